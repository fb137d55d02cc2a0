// Canvas 2D renderer prototype for the map views (issue 12's decision benchmark,
// scripts/bench_render.py): the T volume fetched once from <prefix>_volumes/<token>.nii
// (dashboard.render.volume: NIfTI-1 int16 + scl_slope, gzip-encoded on the wire) and
// three slices + three glass-brain projections drawn from it at a threshold.
// Injected into the app's page by the benchmark; not loaded by the app.
(function () {
  "use strict";
  const MISSING = -32768;
  // nilearn's cold_hot at 21 stops (dashboard.figures._COLD_HOT), interpolated to 256
  const STOPS = [[255, 255, 255], [160, 255, 255], [58, 255, 255], [0, 225, 255], [0, 157, 255], [0, 89, 255], [0, 26, 255],
    [0, 0, 213], [0, 0, 144], [0, 0, 76], [13, 0, 0], [76, 0, 0], [144, 0, 0], [213, 0, 0], [255, 26, 0], [255, 94, 0],
    [255, 157, 0], [255, 225, 0], [255, 255, 58], [255, 255, 160], [255, 255, 255]];
  const LUT = new Uint32Array(256);  // ABGR (little-endian ImageData as Uint32)
  for (let i = 0; i < 256; i++) {
    const f = i / 255 * (STOPS.length - 1), a = Math.min(Math.floor(f), STOPS.length - 2), t = f - a;
    const c = [0, 1, 2].map(k => Math.round(STOPS[a][k] * (1 - t) + STOPS[a + 1][k] * t));
    LUT[i] = (255 << 24) | (c[2] << 16) | (c[1] << 8) | c[0];
  }
  const GREY = (255 << 24) | (200 << 16) | (200 << 8) | 200, CLEAR = 0;

  function parse(buf) {
    const dv = new DataView(buf);
    if (dv.getInt32(0, true) !== 348) { throw new Error("not a little-endian NIfTI-1 image"); }
    const dims = [1, 2, 3].map(i => dv.getInt16(40 + 2 * i, true));
    if (dv.getInt16(70, true) !== 4) { throw new Error("expected int16 voxels"); }
    const offset = dv.getFloat32(108, true), slope = dv.getFloat32(112, true);
    const q = new Int16Array(buf, offset, dims[0] * dims[1] * dims[2]);
    const srow = [280, 296, 312].map(o => [0, 1, 2, 3].map(k => dv.getFloat32(o + 4 * k, true)));
    return {dims, q, slope, step: [srow[0][0], srow[1][1], srow[2][2]], origin: [srow[0][3], srow[1][3], srow[2][3]]};
  }

  async function load(url) {
    const t0 = performance.now();
    const response = await fetch(url);
    const buf = await response.arrayBuffer();
    const vol = parse(buf);
    vol.loadMs = performance.now() - t0;
    vol.bytes = buf.byteLength;
    return vol;
  }

  // one 2D view: an offscreen canvas at voxel size, scaled onto the visible canvas
  function view(canvas, w, h) {
    const off = document.createElement("canvas");
    off.width = w; off.height = h;
    const octx = off.getContext("2d");
    const image = octx.createImageData(w, h);
    return {canvas, ctx: canvas.getContext("2d"), off, octx, image, px: new Uint32Array(image.data.buffer), w, h};
  }

  function colour(value, limit, vmax) {
    if (value === MISSING) { return CLEAR; }
    if (Math.abs(value) < limit) { return GREY; }
    return LUT[Math.max(0, Math.min(255, Math.round((value / vmax + 1) * 127.5)))];
  }

  function present(v) {
    v.octx.putImageData(v.image, 0, 0);
    v.ctx.imageSmoothingEnabled = false;
    v.ctx.clearRect(0, 0, v.canvas.width, v.canvas.height);
    v.ctx.drawImage(v.off, 0, 0, v.canvas.width, v.canvas.height);
  }

  // slice of a RAS volume (x fastest) along axis at index; rows drawn top = high v
  function drawSlice(v, vol, axis, index, limitT, vmaxT) {
    const [nx, ny] = vol.dims, q = vol.q, px = v.px, limit = limitT / vol.slope, vmax = vmaxT / vol.slope;
    const [hAxis, vAxis] = axis === 0 ? [1, 2] : axis === 1 ? [0, 2] : [0, 1];
    const stride = [1, nx, nx * ny], base = index * stride[axis];
    for (let r = 0; r < v.h; r++) {
      const row = (v.h - 1 - r) * stride[vAxis] + base;
      for (let c = 0; c < v.w; c++) { px[r * v.w + c] = colour(q[row + c * stride[hAxis]], limit, vmax); }
    }
    present(v);
  }

  // signed maximum-intensity projection of the voxels at or above the threshold
  function drawGlass(views, vol, limitT, vmaxT) {
    const [nx, ny, nz] = vol.dims, q = vol.q, limit = limitT / vol.slope, vmax = vmaxT / vol.slope;
    const mips = [new Int16Array(ny * nz), new Int16Array(nx * nz), new Int16Array(nx * ny)];
    const inside = [new Uint8Array(ny * nz), new Uint8Array(nx * nz), new Uint8Array(nx * ny)];
    let i = 0;
    for (let z = 0; z < nz; z++) {
      for (let y = 0; y < ny; y++) {
        for (let x = 0; x < nx; x++, i++) {
          const t = q[i];
          if (t === MISSING) { continue; }
          const a = y + ny * z, b = x + nx * z, c = x + nx * y;
          inside[0][a] = inside[1][b] = inside[2][c] = 1;
          if (t >= limit || t <= -limit) {
            const m = t < 0 ? -t : t;
            if (m > Math.abs(mips[0][a])) { mips[0][a] = t; }
            if (m > Math.abs(mips[1][b])) { mips[1][b] = t; }
            if (m > Math.abs(mips[2][c])) { mips[2][c] = t; }
          }
        }
      }
    }
    const sizes = [[ny, nz], [nx, nz], [nx, ny]];
    views.forEach((v, axis) => {
      const [w, h] = sizes[axis], mip = mips[axis], ins = inside[axis];
      for (let r = 0; r < h; r++) {
        for (let c = 0; c < w; c++) {
          const k = (h - 1 - r) * w + c;
          v.px[r * w + c] = mip[k] ? LUT[Math.max(0, Math.min(255, Math.round((mip[k] / vmax + 1) * 127.5)))] : (ins[k] ? GREY : CLEAR);
        }
      }
      present(v);
    });
  }

  window.cueCanvas = {load, view, drawSlice, drawGlass, parse, MISSING};
})();
