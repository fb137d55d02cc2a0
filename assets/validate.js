/* cue-dashboard: typed thresholds checked in the browser, with the reason shown under
 * the input (the same rules as dashboard.app.state.input_problem, which the server
 * applies again: an invalid entry never reaches the view state).
 */
(function () {
  const MAX_K = 10000000;  // dashboard.app.state.MAX_K
  function problem(kind, value) {
    if (value === null || value === undefined || value === "") return "enter a number";
    const v = Number(value);
    if (!Number.isFinite(v)) return "enter a finite number";
    if (kind === "p_unc" && !(v > 0 && v < 1)) return "p must be between 0 and 1 (exclusive)";
    if (kind === "t" && !(v > 0)) return "T must be greater than 0";
    if (kind === "k" && (v < 0 || v !== Math.trunc(v))) return "k must be a whole number of voxels, 0 or more";
    if (kind === "k" && v > MAX_K) return "k must be at most 10,000,000 voxels";
    return "";
  }
  window.dash_clientside = Object.assign({}, window.dash_clientside);
  window.dash_clientside.cue = Object.assign({}, window.dash_clientside.cue, {
    // [invalid, reason] of each typed threshold
    pProblem: function (value) { const why = problem("p_unc", value); return [why !== "", why]; },
    tProblem: function (value) { const why = problem("t", value); return [why !== "", why]; },
    kProblem: function (value) { const why = problem("k", value); return [why !== "", why]; },
    // the T a switch from p to T starts at: the height now shown, to two decimals
    tStart: function (useT, rendered) {
      const h = rendered && rendered.height;
      return (useT && Number.isFinite(h)) ? Math.round(h * 100) / 100 : window.dash_clientside.no_update;
    },
  });
})();
