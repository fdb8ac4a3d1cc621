// CSV export: rows to RFC 4180 text (values exactly as the API gave them, quoted where needed)
// and a download of it through a Blob URL, which the strict CSP allows (no data: or inline).

/** One cell: null/undefined empty, quoted when it holds a comma, a quote, CR or LF. */
export function csvCell(value) {
  if (value === null || value === undefined) return "";
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** The header line and one line per row (CRLF line ends, as RFC 4180 asks). */
export function toCsv(columns, rows) {
  const lines = [columns.map(csvCell).join(",")];
  for (const row of rows) lines.push(columns.map((c) => csvCell(row[c])).join(","));
  return `${lines.join("\r\n")}\r\n`;
}

/** Parses RFC 4180 text into arrays of cells (for the unit tests and anyone checking a file). */
export function parseCsv(text) {
  const rows = [];
  let row = [];
  let cell = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") {
      row.push(cell);
      cell = "";
    } else if (c === "\r" && text[i + 1] === "\n") {
      // The CR of a CRLF ends the line with the LF.
    } else if (c === "\n") {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = "";
    } else cell += c;
  }
  if (cell !== "" || row.length) {
    row.push(cell);
    rows.push(row);
  }
  return rows;
}

/** Saves `text` as a file named `filename`: a temporary Blob URL clicked through a hidden link. */
export function download(filename, text, type = "text/csv;charset=utf-8") {
  const url = URL.createObjectURL(new Blob([text], { type }));
  // Not built with h(): that helper refuses every link but the dashboard's own routes.
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
  // The download has started by the time the click returns; the URL is only a handle to it.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
