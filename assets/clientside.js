/* cue-dashboard: the clientside callbacks that need no server (dashboard/app/callbacks.py
 * names them; namespace "cue").  No code is ever built from values: study strings and ids
 * reach these functions as data (stores, component properties).
 */
(function () {
  const nu = () => window.dash_clientside.no_update;
  window.dash_clientside = Object.assign({}, window.dash_clientside);
  window.dash_clientside.cue = Object.assign({}, window.dash_clientside.cue, {
    // the direction radio's options follow the contrast (options: contrast id -> options, sent once)
    directionOptions: function (contrast, options) {
      return (options && Object.prototype.hasOwnProperty.call(options, contrast) && options[contrast]) || nu();
    },
    // p uncorrected <-> FWE: the p input takes SPM's default of that kind
    pDefault: function (kind) { return kind === "fwe" ? 0.05 : 0.001; },
    // [p disabled, T disabled, p kind disabled]: which threshold input is active
    thresholdInputsDisabled: function (useT) { return [!!useT, !useT, !!useT]; },
    // RFT p-values that arrived for a table: shown only if that table is still the one on screen
    rftRows: function (answer, rendered) {
      if (!answer || !Array.isArray(rendered) || JSON.stringify(answer.key) !== JSON.stringify(rendered.slice(0, -1))) {
        return [nu(), nu(), nu(), nu()];
      }
      return [answer.rows === null ? nu() : answer.rows, answer.note, answer.footer, answer.key.concat([true])];
    },
    // "N of M included" (the text of dashboard.app.views.included_text)
    includedText: function (state, selected, info) {
      if (!info.images) { return "group maps only"; }
      const known = new Set(info.ids), total = info.ids.length, minimum = info.minimum;
      let nSel = state.participants.length;
      if (selected !== null && selected !== undefined) {
        const ids = Array.isArray(selected) ? selected.map(r => r && r.participant_id) : (selected.ids || []);
        nSel = new Set(ids.filter(p => known.has(p))).size;
      }
      let text = state.participants.length + " of " + total + " included";
      if (nSel < minimum) { text += " (select at least " + minimum + ")"; }
      return text;
    },
    // the view state goes on to the compare figure only while its tab is shown
    whileCompareShown: function (activeTab, state, compareTab) { return activeTab === compareTab ? state : nu(); },
    // the influence panel is asked for once the page has painted the views of the same
    // action (two animation frames): its request and drawing never delay the maps, the
    // table and the scatter
    afterPaint: function (value) {
      return new Promise(resolve => requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(() => resolve(value), 0))));
    },
    // what a leave-one-out run would answer: the view state's keys it depends on
    // (dashboard.app.views.SURVIVAL_KEYS), null without a selected cluster
    // a click on Run as a fresh start token: the background job's arguments are never the
    // same twice (no answer comes from an earlier click's)
    permStart: function (clicks) { return clicks ? {clicks: clicks, t: Date.now(), r: Math.random()} : nu(); },
    // the panel's question, passed on only while its job is running (to be followed):
    // the background callback forks a process per call, so a view change must not trigger it
    permFollow: function (asked) { return asked && asked.running ? asked : nu(); },
    // a finished permutation job's drawing, kept only if it answers the panel's current
    // question (dashboard.app.permute.token)
    permShown: function (done, asked) {
      if (!done || !asked || JSON.stringify(done.token) !== JSON.stringify(asked.token)) { return [nu(), nu(), nu(), nu(), nu(), nu()]; }
      const out = done.outputs;  // status, rows, null figure, its wrapper's style, TFCE map, its wrapper's style
      return out.map(x => x === null ? nu() : x);
    },
    survivalRequest: function (state) {
      if (!state || !state.cluster) { return null; }
      const keys = ["contrast", "direction", "use_t", "t", "p_kind", "p_unc", "k", "svc", "model", "participants", "cluster"];
      const out = {};
      keys.forEach(k => { out[k] = state[k]; });
      return out;
    },
    // the result on screen only while it answers the selected cluster's question
    survivalShown: function (request, shown) {
      const same = request !== null && shown !== null && JSON.stringify(request) === JSON.stringify(shown);
      const note = request === null ? "Select a cluster (a table row or a blob) to test it." :
        (same ? "" : "Run it for the selected cluster, threshold and participants.");
      return [same ? {} : {display: "none"}, note];
    },
    // the view goes on to the peak markers only while a peak table is marked, or once more
    // when the last one is unmarked (to clear them): no request otherwise
    peakView: function (layers, rendered, state, previous) {
      const on = Array.isArray(layers) && layers.length > 0;
      const wasOn = !!(previous && Array.isArray(previous.layers) && previous.layers.length > 0);
      if ((!on && !wasOn) || !rendered) { return nu(); }
      return {layers: on ? layers : [], state: state, rendered: rendered};
    },
  });
})();
