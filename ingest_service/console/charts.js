// The two charts of a source page, drawn with the vendored Chart.js (window.Chart), each with
// a table view of the same numbers. Series differ by colour (a palette safe for colour
// blindness) and by a fill pattern or point shape, with a legend and tooltips, so none is
// told apart by colour alone.

import {h} from "./dom.js";
import {hourLabel, moment, number} from "./format.js";

// Okabe and Ito's palette, readable by people with any common colour blindness.
const COLOURS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000", "#F0E442"];
const PATTERNS = ["solid", "diagonal", "dots", "horizontal", "cross", "vertical"];
const POINTS = ["circle", "rect", "triangle", "rectRot", "star", "crossRot", "rectRounded", "cross"];
const DASHES = [[], [6, 3], [2, 2], [10, 4, 2, 4]];

function colour(index) {
  return COLOURS[index % COLOURS.length];
}

/** A fill for series `index`: its colour, patterned in white once the colours repeat. */
function patternFill(index) {
  const base = colour(index);
  const kind = PATTERNS[(index + Math.floor(index / COLOURS.length)) % PATTERNS.length];
  if (kind === "solid") return base;
  const size = 8;
  const tile = document.createElement("canvas");
  tile.width = size;
  tile.height = size;
  const g = tile.getContext("2d");
  g.fillStyle = base;
  g.fillRect(0, 0, size, size);
  g.strokeStyle = "rgba(255,255,255,0.85)";
  g.fillStyle = "rgba(255,255,255,0.85)";
  g.lineWidth = 1.5;
  g.beginPath();
  if (kind === "diagonal") {
    g.moveTo(0, size);
    g.lineTo(size, 0);
  } else if (kind === "horizontal") {
    g.moveTo(0, size / 2);
    g.lineTo(size, size / 2);
  } else if (kind === "vertical") {
    g.moveTo(size / 2, 0);
    g.lineTo(size / 2, size);
  } else if (kind === "cross") {
    g.moveTo(0, 0);
    g.lineTo(size, size);
    g.moveTo(size, 0);
    g.lineTo(0, size);
  } else if (kind === "dots") {
    g.arc(size / 2, size / 2, 1.6, 0, 2 * Math.PI);
    g.fill();
  }
  g.stroke();
  return g.createPattern(tile, "repeat");
}

function chartLibrary() {
  if (!window.Chart) throw new Error("the chart library did not load (vendor/chart.umd.min.js)");
  const Chart = window.Chart;
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.color = "#2b3440";
  Chart.defaults.animation = false; // numbers that update in place, not a show
  return Chart;
}

function figure(canvas, summary) {
  return h("figure", {class: "chart"}, h("div", {class: "chart-box"}, canvas),
    h("figcaption", {class: "visually-hidden"}, summary));
}

/**
 * Events per hour, stacked by event type. Returns {element, chart} (chart null when there is
 * nothing to draw); `hourly` is GET /sources/{id}/events/hourly's answer.
 */
export function hourlyChart(hourly) {
  const shown = hourly.series.filter((s) => s.total > 0);
  const total = shown.reduce((sum, s) => sum + s.total, 0);
  const hours = hourly.hours.length;
  if (!shown.length) {
    return {element: h("p", {class: "empty"}, `No events received in the last ${hours} hours.`), chart: null};
  }
  const Chart = chartLibrary();
  const summary = `Events received per hour over the last ${hours} hours, stacked by event type: ` +
    `${number(total)} in all (${shown.map((s) => `${s.event} ${number(s.total)}`).join(", ")}). ` +
    "The table view below lists every number.";
  const canvas = h("canvas", {role: "img", "aria-label": summary, id: "hourly-canvas"});
  const chart = new Chart(canvas, {
    type: "bar",
    data: {
      labels: hourly.hours.map(hourLabel),
      datasets: shown.map((s, i) => ({
        label: s.event,
        data: s.counts,
        backgroundColor: patternFill(i),
        borderColor: colour(i),
        borderWidth: 1,
      })),
    },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      scales: {
        x: {stacked: true, ticks: {maxRotation: 0, autoSkip: true, autoSkipPadding: 12}},
        y: {stacked: true, beginAtZero: true, ticks: {precision: 0}, title: {display: true, text: "events per hour"}},
      },
      plugins: {
        legend: {position: "bottom"},
        tooltip: {
          mode: "index",
          intersect: false,
          filter: (item) => item.raw > 0,
          callbacks: {title: (items) => moment(hourly.hours[items[0].dataIndex])},
        },
      },
    },
  });
  return {element: figure(canvas, summary), chart};
}

/** The hourly numbers as a table, newest hour first, with every type that had events. */
export function hourlyTable(hourly) {
  const shown = hourly.series.filter((s) => s.total > 0);
  const rows = hourly.hours.map((hour, i) => ({hour, i})).reverse();
  return h("table", {class: "numbers", id: "hourly-table"},
    h("caption", {class: "visually-hidden"}, "Events received per hour and event type"),
    h("thead", {}, h("tr", {}, h("th", {scope: "col"}, "Hour (local time)"),
      shown.map((s) => h("th", {scope: "col", class: "num"}, s.event)),
      h("th", {scope: "col", class: "num"}, "all"))),
    h("tbody", {}, rows.map(({hour, i}) => h("tr", {dataset: {hour}},
      h("th", {scope: "row"}, h("time", {datetime: hour}, moment(hour))),
      shown.map((s) => h("td", {class: "num", dataset: {event: s.event}}, number(s.counts[i]))),
      h("td", {class: "num"}, number(shown.reduce((sum, s) => sum + s.counts[i], 0)))))),
    h("tfoot", {}, h("tr", {}, h("th", {scope: "row"}, "total"),
      shown.map((s) => h("td", {class: "num"}, number(s.total))),
      h("td", {class: "num"}, number(shown.reduce((sum, s) => sum + s.total, 0))))));
}

/**
 * Rows written per collection across the last finished runs (oldest first), one line per
 * collection named by the ledger, whatever collections it holds.
 */
export function collectionRows(runs, limit = 12) {
  const finished = runs.filter((r) => r.status !== "running").slice(0, limit).reverse();
  const names = [];
  for (const run of finished) {
    for (const c of run.collections) if (!names.includes(c.collection)) names.push(c.collection);
  }
  const value = (run, name) => run.collections.find((c) => c.collection === name)?.rows_upserted ?? null;
  return {finished, names, value};
}

export function collectionsChart(runs) {
  const {finished, names, value} = collectionRows(runs);
  if (!finished.length || !names.length) {
    return {element: h("p", {class: "empty"}, "No finished sync run yet."), chart: null};
  }
  const Chart = chartLibrary();
  const summary = `Rows written per collection in the last ${finished.length} finished sync runs, ` +
    `oldest first: ${names.join(", ")}. The table view below lists every number.`;
  const canvas = h("canvas", {role: "img", "aria-label": summary, id: "collections-canvas"});
  const chart = new Chart(canvas, {
    type: "line",
    data: {
      labels: finished.map((r) => moment(r.started_at)),
      datasets: names.map((name, i) => ({
        label: name,
        data: finished.map((run) => value(run, name)),
        borderColor: colour(i),
        backgroundColor: colour(i),
        pointStyle: POINTS[i % POINTS.length],
        pointRadius: 5,
        pointHoverRadius: 7,
        borderDash: DASHES[i % DASHES.length],
        spanGaps: true,
      })),
    },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      scales: {
        x: {ticks: {maxRotation: 0, autoSkip: true, autoSkipPadding: 12}},
        y: {beginAtZero: true, ticks: {precision: 0}, title: {display: true, text: "rows written"}},
      },
      plugins: {
        legend: {position: "bottom", labels: {usePointStyle: true}},
        tooltip: {mode: "index", intersect: false},
      },
    },
  });
  return {element: figure(canvas, summary), chart};
}

export function collectionsTable(runs) {
  const {finished, names, value} = collectionRows(runs);
  return h("table", {class: "numbers", id: "collections-table"},
    h("caption", {class: "visually-hidden"}, "Rows written per collection and sync run"),
    h("thead", {}, h("tr", {}, h("th", {scope: "col"}, "Run started"), h("th", {scope: "col"}, "status"),
      names.map((n) => h("th", {scope: "col", class: "num"}, n)))),
    h("tbody", {}, [...finished].reverse().map((run) => h("tr", {dataset: {run: run.id}},
      h("th", {scope: "row"}, h("time", {datetime: run.started_at}, moment(run.started_at))),
      h("td", {}, run.status),
      names.map((n) => {
        const rows = value(run, n);
        return h("td", {class: "num", dataset: {collection: n}}, rows === null ? "–" : number(rows));
      })))));
}
