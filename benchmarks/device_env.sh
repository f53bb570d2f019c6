# Sourced by the GPU scripts: install the wheels carried in .whl/ (packages the device image
# lacks) and put the project's sources on PYTHONPATH. Sets $out for results.
out="${OUT:-benchmarks/results/gpu}"
mkdir -p "$out"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="src:.:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
