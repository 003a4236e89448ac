// Numbers, moments and ages as people read them; exact values stay in title attributes.

const numbers = new Intl.NumberFormat();

export function number(value) {
  return numbers.format(value);
}

export function ageOf(milliseconds) {
  const seconds = Math.max(0, Math.round(milliseconds / 1000));
  if (seconds < 45) return "just now";
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ago`;
  return `${Math.floor(hours / 24)} d ago`;
}

/** "3 min ago" for an ISO date-time, or `never` when there is none. */
export function age(iso, never = "never") {
  return iso ? ageOf(Date.now() - Date.parse(iso)) : never;
}

/** A local date and time: 2026-12-01 14:05 (the ISO form, with seconds, in titles). */
export function moment(iso) {
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** A UTC hour on a chart's axis, in local time (14:00, or 19:30 where the offset has half
 * hours), with the weekday on the first hour of a local day (Tue 00:00). */
export function hourLabel(iso) {
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return d.getHours() === 0 ? `${d.toLocaleDateString(undefined, {weekday: "short"})} ${time}` : time;
}

export function duration(startIso, endIso) {
  if (!startIso || !endIso) return "";
  const seconds = Math.max(0, Math.round((Date.parse(endIso) - Date.parse(startIso)) / 1000));
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${seconds % 60} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** A ratio as a percentage with one decimal (99.8 %). */
export function percent(ratio) {
  return `${(ratio * 100).toFixed(1)} %`;
}

/** A sync interval in the largest unit that divides it, as SYNC_INTERVAL is written (3 h). */
export function interval(seconds) {
  for (const [unit, size] of [["d", 86400], ["h", 3600], ["min", 60]]) {
    if (seconds % size === 0) return `${seconds / size} ${unit}`;
  }
  return `${seconds} s`;
}
