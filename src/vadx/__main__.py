"""``python -m vadx`` (and ``torchrun -m vadx``) run the ``vadx`` command."""

from vadx.cli import main

if __name__ == "__main__":
    main()
