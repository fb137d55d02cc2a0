/* cue-dashboard: typed thresholds checked in the browser, with the reason shown under
 * the input (the same rules as dashboard.app.views.input_problem, which the server
 * applies again: an invalid entry never reaches the view state).
 */
(function () {
  function problem(kind, value) {
    if (value === null || value === undefined || value === "") return "enter a number";
    const v = Number(value);
    if (!Number.isFinite(v)) return "enter a finite number";
    if (kind === "p_unc" && !(v > 0 && v < 1)) return "p must be between 0 and 1 (exclusive)";
    if (kind === "t" && !(v > 0)) return "T must be greater than 0";
    if (kind === "k" && (v < 0 || v !== Math.trunc(v))) return "k must be a whole number of voxels, 0 or more";
    return "";
  }
  window.dash_clientside = Object.assign({}, window.dash_clientside);
  window.dash_clientside.cue = Object.assign({}, window.dash_clientside.cue, {
    inputProblem: function (kind, value) {
      const why = problem(kind, value);
      return [why !== "", why];
    },
  });
})();
