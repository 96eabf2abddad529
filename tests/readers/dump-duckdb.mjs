// SPDX-License-Identifier: MIT
// Part files as DuckDB reads them, for tests that check exact rows (tests/test_filesink.c):
//   node dump-duckdb.mjs parquet|csv|jsonl FILE...
// DuckDB infers the schema itself (read_parquet; read_csv with a header; read_json, newline
// delimited). Prints it as "name TYPE, ..." on the first line, then every row as a JSON array in
// file order: timestamps as epoch milliseconds (a struct of them, as JSON's window, flattened into
// its fields), integers as decimal strings (exact for any int64), strings as they are.
import { DuckDBInstance } from '@duckdb/node-api';

const [format, ...files] = process.argv.slice(2);
if (!files.length || !['parquet', 'csv', 'jsonl'].includes(format)) {
  console.error('usage: dump-duckdb.mjs parquet|csv|jsonl FILE...');
  process.exit(2);
}
const db = await DuckDBInstance.create(':memory:');
const con = await db.connect();
const list = '[' + files.map((f) => `'${f.replaceAll("'", "''")}'`).join(',') + ']';
const source = format === 'parquet' ? `read_parquet(${list})`
  : format === 'csv' ? `read_csv(${list}, header = true)`
  : `read_json(${list}, format = 'newline_delimited')`;
const schema = (await (await con.run(`DESCRIBE SELECT * FROM ${source}`)).getRows()).map((r) => [r[0], r[1]]);
const ident = (s) => '"' + s.replaceAll('"', '""') + '"';
const select = [];
for (const [name, type] of schema) {
  const m = /^STRUCT\((.*)\)$/.exec(type);
  if (type.startsWith('TIMESTAMP')) {
    select.push(`epoch_ms(${ident(name)})`);
  } else if (m) {
    // STRUCT("start" TIMESTAMP..., "end" TIMESTAMP...): one value per field.
    for (const f of m[1].matchAll(/"?([A-Za-z_]+)"? (TIMESTAMP[A-Z ]*|[A-Z]+)/g))
      select.push(f[2].startsWith('TIMESTAMP') ? `epoch_ms(${ident(name)}.${ident(f[1])})` : `${ident(name)}.${ident(f[1])}`);
  } else {
    select.push(ident(name));
  }
}
console.log(schema.map(([n, t]) => `${n} ${t}`).join(', '));
const rows = await (await con.run(`SELECT ${select.join(', ')} FROM ${source}`)).getRows();
for (const row of rows)
  console.log(JSON.stringify(row.map((v) => (typeof v === 'bigint' || typeof v === 'number' ? String(v) : v))));
