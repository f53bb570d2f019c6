// vadx's explanation viewer: draws a clip's heat map, contour and contours from the report's
// player data — each frame once (JPEG) and each method's 8-bit maps — for any method, view,
// opacity and frame, as vadx.render.overlay draws them. Inlined in report.html; served to the
// review page as static/viewer.js (the overlay on its video player).
(function (global) {
  "use strict";

  function load(src) {
    return new Promise(function (resolve) {
      const img = new Image();
      img.onload = function () { resolve(img); };
      img.src = src;
    });
  }

  global.vadxViewer = function (data) {
    const [H, W] = data.size, [MH, MW] = data.map_size, [TOP, LEFT, BH, BW] = data.box;
    const frames = Promise.all(data.frames.map(load));
    const atlases = {}, fields = {};
    Object.keys(data.methods).forEach(function (m) { atlases[m] = load(data.methods[m].maps); });

    // the method's map of frame t on the displayed frame: values 0–255, W×H (as
    // Geometry.to_source); the map's edge repeated one pixel around, so that bilinear sampling
    // at the edge reads the edge (as cv2.resize does), not transparency
    function field(atlas, m, t) {
      const key = m + "/" + t;
      if (fields[key]) return fields[key];
      const tile = document.createElement("canvas"); tile.width = MW + 2; tile.height = MH + 2;
      const tctx = tile.getContext("2d");
      [[-1, -1], [-1, 0], [-1, 1], [0, -1], [0, 1], [1, -1], [1, 0], [1, 1], [0, 0]].forEach(function ([dx, dy]) {
        tctx.drawImage(atlas, 0, t * MH, MW, MH, 1 + dx, 1 + dy, MW, MH);
      });
      const out = document.createElement("canvas"); out.width = W; out.height = H;
      const octx = out.getContext("2d");
      octx.imageSmoothingEnabled = true;
      octx.drawImage(tile, LEFT + 1, TOP + 1, BW, BH, 0, 0, W, H);
      const rgba = octx.getImageData(0, 0, W, H).data, values = new Uint8ClampedArray(W * H);
      for (let i = 0; i < values.length; i++) values[i] = rgba[4 * i + 3] ? rgba[4 * i] : 0;
      fields[key] = values;
      return values;
    }
    function colour(v) { return [data.lut[3 * v], data.lut[3 * v + 1], data.lut[3 * v + 2]]; }
    function heat(target, values, alpha) {
      const layer = target.createImageData(W, H), px = layer.data;
      for (let i = 0; i < values.length; i++) {
        const v = values[i];
        px[4 * i] = data.lut[3 * v]; px[4 * i + 1] = data.lut[3 * v + 1]; px[4 * i + 2] = data.lut[3 * v + 2];
        px[4 * i + 3] = 255;
      }
      const tmp = document.createElement("canvas"); tmp.width = W; tmp.height = H;
      tmp.getContext("2d").putImageData(layer, 0, 0);
      target.globalAlpha = alpha; target.drawImage(tmp, 0, 0); target.globalAlpha = 1;
    }
    // the outline of the region at or above `level` (as cv2.findContours + drawContours); the
    // brush of cv2's anti-aliased lines: 1 px for width 1, else 2·⌊(w + 1) / 2⌋ + 1 px
    function outline(target, values, level, rgb, width) {
      const cut = Math.round(level * 255), half = width <= 1 ? 0 : Math.floor((width + 1) / 2);
      const side = 2 * half + 1;
      target.fillStyle = "rgb(" + rgb.join(",") + ")";
      for (let y = 0; y < H; y++) {
        for (let x = 0; x < W; x++) {
          const i = y * W + x;
          if (values[i] < cut) continue;
          const edge = x === 0 || y === 0 || x === W - 1 || y === H - 1 || values[i - 1] < cut ||
            values[i + 1] < cut || values[i - W] < cut || values[i + W] < cut;
          if (edge) target.fillRect(x - half, y - half, side, side);
        }
      }
    }

    // draw frame t with `method` in `view` onto `target` (W×H); without the frame when `bare`
    // (an overlay over a video that shows it)
    function paint(target, method, t, view, opacity, bare) {
      return Promise.all([frames, atlases[method]]).then(function ([images, atlas]) {
        const values = field(atlas, method, t);
        if (bare) target.clearRect(0, 0, W, H); else target.drawImage(images[t], 0, 0, W, H);
        if (view === "heatmap") heat(target, values, opacity);
        else if (view === "contour") outline(target, values, 0.5, data.contour, data.line);
        else data.levels.forEach(function (level, rank) {
          outline(target, values, level, colour(Math.round(level * 255)), data.line + rank);
        });
      });
    }
    return { size: [H, W], frames: data.numbers, paint: paint };
  };
})(window);
