// SPDX-License-Identifier: MIT
// Reads a tally file sink directory with DuckDB, a reader tally did not write:
//   node check-duckdb.mjs DIR FORMAT TRUTH
// The committed part files come from DIR/_spark_metadata (the last "<id>.compact" and the batches
// after it, as Spark reads them); DuckDB reads them (read_parquet or read_csv) and must see the
// schema word VARCHAR, count BIGINT, epoch BIGINT, and per word the count of its highest epoch equal
// to TRUTH (lines "<word as hex>\t<count>", decoded as UTF-8 with U+FFFD, as tally writes words).
import { DuckDBInstance } from '@duckdb/node-api';
import fs from 'node:fs';
import path from 'node:path';

const [dir, format, truthPath] = process.argv.slice(2);
if (!truthPath) {
  console.error('usage: check-duckdb.mjs DIR parquet|csv|jsonl TRUTH');
  process.exit(2);
}
const log = path.join(dir, '_spark_metadata');
const ids = new Map();
for (const name of fs.readdirSync(log)) {
  const m = /^(\d+)(\.compact)?$/.exec(name);
  if (m) ids.set(Number(m[1]), name);
}
const last = Math.max(...ids.keys());
const compacts = [...ids.entries()].filter(([, n]) => n.endsWith('.compact')).map(([i]) => i);
const files = [];
for (let i = compacts.length ? Math.max(...compacts) : 0; i <= last; i++) {
  const lines = fs.readFileSync(path.join(log, ids.get(i)), 'utf8').split('\n');
  if (lines[0] !== 'v1') throw new Error(`${ids.get(i)}: no v1 line`);
  for (const l of lines.slice(1)) if (l.trim()) files.push(JSON.parse(l).path.replace(/^file:\/\//, ''));
}
const truth = new Map();
for (const line of fs.readFileSync(truthPath, 'utf8').split('\n')) {
  if (!line) continue;
  const [hex, count] = line.split('\t');
  const word = new TextDecoder('utf-8').decode(Buffer.from(hex, 'hex'));
  truth.set(word, (truth.get(word) ?? 0) + Number(count));
}

const db = await DuckDBInstance.create(':memory:');
const con = await db.connect();
const list = '[' + files.map((f) => `'${f.replaceAll("'", "''")}'`).join(',') + ']';
const source = format === 'parquet' ? `read_parquet(${list})`
  : format === 'csv' ? `read_csv(${list}, header = true, quote = '"', escape = '"', all_varchar = false, ` +
    `columns = {'word': 'VARCHAR', 'count': 'BIGINT', 'epoch': 'BIGINT'})`
  : `read_json(${list}, format = 'newline_delimited', columns = {'word': 'VARCHAR', 'count': 'BIGINT', 'epoch': 'BIGINT'})`;
const schema = (await (await con.run(`DESCRIBE SELECT * FROM ${source}`)).getRows()).map((r) => `${r[0]} ${r[1]}`);
if (schema.join(', ') !== 'word VARCHAR, count BIGINT, epoch BIGINT') {
  console.error(`check-duckdb: schema ${schema.join(', ')}`);
  process.exit(1);
}
const rows = await (await con.run(
  `SELECT word, arg_max(count, epoch)::BIGINT, count(*)::BIGINT, count(DISTINCT epoch)::BIGINT FROM ${source} GROUP BY word`)).getRows();
let wrong = 0;
for (const [word, count, n, epochs] of rows) {
  if (truth.get(word) !== Number(count) || n !== epochs) {
    if (wrong++ < 5) console.error(`check-duckdb: ${JSON.stringify(word)}: last count ${count}, truth ${truth.get(word)}, ${n} rows in ${epochs} epochs`);
  }
}
const seen = new Set(rows.map((r) => r[0]));
const missing = [...truth.keys()].filter((w) => !seen.has(w)).length;
console.error(`check-duckdb: DuckDB read ${files.length} committed ${format} files: ${rows.length} words, ` +
  `${wrong} wrong, ${missing} missing; schema ${schema.join(', ')}`);
process.exit(wrong || missing ? 1 : 0);
