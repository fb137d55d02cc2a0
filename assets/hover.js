/* cue-dashboard: T under the pointer over the map views, looked up in the browser.
 *
 * The map figures' only traces are static transparent heatmaps (they never change, so
 * plotly.js never replots them); the T values come separately, in the hover-values
 * store (dashboard.figures.hover_values: base64 little-endian int16 of round(T * 100),
 * -32768 = missing, rows = the view's vertical axis).  These clientside callbacks turn
 * a plotly hover event into a dcc.Tooltip next to the pointer: no request per move.
 */
(function () {
  const SCALE = 100, MISSING = -32768;
  const NAMES = ["x", "y", "z"];
  const VIEW_AXES = {0: [1, 2], 1: [0, 2], 2: [0, 1]};  // figures.VIEW_AXES
  const decoded = new WeakMap();  // hover spec object -> Int16Array (a new spec per change)

  function values(spec) {
    let a = decoded.get(spec);
    if (!a) {
      const bin = atob(spec.b);
      const bytes = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
      a = new Int16Array(bytes.buffer);  // little-endian, as every browser platform
      decoded.set(spec, a);
    }
    return a;
  }

  // T at the hovered cell (from the pointer's mm: Dash's hoverData carries no indices), or null
  function lookup(spec, point) {
    if (!spec || !point) return null;
    const col = Math.round((point.x - spec.x0) / spec.dx), row = Math.round((point.y - spec.y0) / spec.dy);
    if (row < 0 || col < 0 || row >= spec.h || col >= spec.w) return null;
    const q = values(spec)[row * spec.w + col];
    return q === MISSING ? null : q / SCALE;
  }

  function fmt(v) { return Number.isInteger(v) ? String(v) : String(+v.toFixed(2)); }

  const hide = () => [false, window.dash_clientside.no_update, window.dash_clientside.no_update];

  // the tooltip keeps the line breaks (white-space: pre, assets/app.css)
  function tooltip(point, lines) { return [true, point.bbox, lines.join("\n")]; }

  // a slice through `axis`: two coordinates from the pointer, the slice's own from the store
  function sliceTooltip(hoverData, store, axis) {
    const point = hoverData && hoverData.points && hoverData.points[0];
    const spec = store && store.slices[axis];
    if (!point || !spec) return hide();
    const [ha, va] = VIEW_AXES[axis];
    const xyz = [0, 0, 0];
    xyz[ha] = point.x; xyz[va] = point.y; xyz[axis] = spec.c;
    const t = lookup(spec, point);
    return tooltip(point, [`MNI (${xyz.map(fmt).join(", ")})`, t === null ? "outside the mask" : `T = ${t.toFixed(2)}`]);
  }

  window.dash_clientside = Object.assign({}, window.dash_clientside);
  window.dash_clientside.cue = Object.assign({}, window.dash_clientside.cue, {
    // glass brain: trace n is the panel projecting along axis n
    glassTooltip: function (hoverData, store) {
      const point = hoverData && hoverData.points && hoverData.points[0];
      if (!point || !store) return hide();
      const axis = point.curveNumber % 3;
      const [ha, va] = VIEW_AXES[axis];
      const t = lookup(store.glass[axis], point);
      return tooltip(point, [`${NAMES[ha]} = ${fmt(point.x)}, ${NAMES[va]} = ${fmt(point.y)}`,
                             t === null ? "outside the brain" : `max |T| along ${NAMES[axis]}: T = ${t.toFixed(2)}`]);
    },
    // one named function per slice (the callbacks pass no code, only data)
    sagittalTooltip: function (hoverData, store) { return sliceTooltip(hoverData, store, 0); },
    coronalTooltip: function (hoverData, store) { return sliceTooltip(hoverData, store, 1); },
    axialTooltip: function (hoverData, store) { return sliceTooltip(hoverData, store, 2); },
  });
})();
