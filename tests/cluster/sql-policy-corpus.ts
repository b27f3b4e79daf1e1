/**
 * Hostile SQL, as a careless or malicious client would send it: statements that reach outside
 * the database file, change a connection's settings, tamper with the schema or Tandem's tables,
 * take over the transaction, hide a write behind a read, or stress the parser. A few are
 * legitimate writes (they may succeed; the nodes must still agree). Writes aim at table `h`.
 * `outside` is a path outside every data directory that must not exist afterwards; each file
 * the corpus names is under it or next to it (same prefix).
 */
export function hostileCorpus(outside: string): string[] {
  const q = (path: string) => `'${path.replaceAll("'", "''")}'`
  return [
    // Other files.
    `ATTACH DATABASE ${q(`${outside}/attach.db`)} AS a`,
    `ATTACH ${q(`${outside}-b.db`)} AS b; CREATE TABLE b.x (id INTEGER PRIMARY KEY)`,
    `ATTACH ${q(`file:${outside}-c.db?mode=rwc`)} AS c`,
    `ATTACH ':memory:' AS m`,
    'DETACH DATABASE main',
    'DETACH temp',
    'VACUUM',
    `VACUUM INTO ${q(`${outside}-vacuum.db`)}`,
    `vacuum main into ${q(`${outside}-vacuum2.db`)}`,
    `/* a comment */ VACUUM INTO ${q(`${outside}-vacuum3.db`)}`,
    `SELECT 1; VACUUM INTO ${q(`${outside}-vacuum4.db`)}`,
    `EXPLAIN VACUUM INTO ${q(`${outside}-vacuum5.db`)}`,
    `SELECT load_extension(${q(`${outside}-evil.so`)})`,
    `SELECT load_extension('libc.so.6', 'system')`,
    `SELECT writefile(${q(`${outside}-w.txt`)}, 'x')`,
    `SELECT readfile('/etc/passwd')`,
    // Connection settings and the schema behind SQLite's back.
    'PRAGMA writable_schema = ON',
    `PRAGMA writable_schema = 1; UPDATE sqlite_master SET sql = 'CREATE TABLE h (x)' WHERE name = 'h'`,
    `UPDATE sqlite_master SET name = 'y' WHERE name = 'h'`,
    'DELETE FROM sqlite_schema',
    `INSERT INTO sqlite_master VALUES ('table', 'z', 'z', 0, 'CREATE TABLE z (a)')`,
    'PRAGMA journal_mode = DELETE',
    'PRAGMA synchronous = OFF',
    'PRAGMA foreign_keys = OFF',
    'PRAGMA user_version = 7',
    'PRAGMA main.application_id = 1',
    `PRAGMA temp_store_directory = ${q(outside)}`,
    'PRAGMA wal_checkpoint(TRUNCATE)',
    'PRAGMA schema_version = 1',
    'PRAGMA query_only = 0',
    `SELECT * FROM pragma_journal_mode('delete')`,
    'PRAGMA integrity_check',
    // Temporary objects.
    'CREATE TEMP TABLE tt (id INTEGER PRIMARY KEY)',
    'CREATE TABLE temp.tt2 (id INTEGER PRIMARY KEY)',
    'CREATE TEMPORARY VIEW tv AS SELECT 1',
    'CREATE TRIGGER temp.tr AFTER INSERT ON h BEGIN UPDATE h SET v = 1000 WHERE id = NEW.id; END',
    'CREATE VIRTUAL TABLE temp.f USING fts5(a)',
    'SELECT * FROM sqlite_temp_master',
    // Tandem's tables.
    'CREATE TRIGGER tl AFTER INSERT ON _tandem_log BEGIN DELETE FROM _tandem_log; END',
    `CREATE TRIGGER tj BEFORE INSERT ON "_tandem_jobs" BEGIN SELECT RAISE(ABORT, 'stop'); END`,
    'CREATE INDEX il ON _tandem_log (epoch)',
    'CREATE TRIGGER tu AFTER INSERT ON h BEGIN DELETE FROM _tandem_log; END',
    'CREATE VIEW vl AS SELECT * FROM _tandem_log',
    'CREATE TRIGGER "_tandem_x" AFTER INSERT ON h BEGIN SELECT 1; END',
    'DROP TRIGGER IF EXISTS _tandem_anything',
    'DELETE FROM _tandem_log',
    `UPDATE _tandem_meta SET value = 99 WHERE key = 'epoch'`,
    'INSERT INTO _tandem_log DEFAULT VALUES',
    'DROP TABLE _tandem_log',
    'ALTER TABLE _tandem_log RENAME TO stolen',
    'ALTER TABLE h RENAME TO _tandem_h',
    'CREATE TABLE _tandem_mine (id INTEGER PRIMARY KEY)',
    'SELECT * FROM "_tandem_log" LIMIT 1',
    'CREATE TABLE main.sqlite_x (id INTEGER PRIMARY KEY)',
    // The transaction is the writer's.
    'BEGIN',
    `BEGIN IMMEDIATE; INSERT INTO h (v) VALUES ('in a transaction'); COMMIT`,
    'COMMIT',
    'ROLLBACK',
    'SAVEPOINT s1',
    'RELEASE s1',
    'END TRANSACTION',
    // A write hidden behind a read.
    'SELECT 1; -- a comment\nDELETE FROM h',
    'SELECT 1 /* ; */; DROP TABLE h',
    `SELECT ';'; INSERT INTO h (v) VALUES ('hidden')`,
    'WITH x AS (SELECT 1) DELETE FROM h WHERE id IN (SELECT * FROM x)',
    'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 10) INSERT INTO h (v) SELECT x FROM c',
    `INSERT INTO h (v) VALUES ('returned') RETURNING *`,
    `SELECT 1\0; DELETE FROM h`,
    // Numbers, bytes and names.
    'INSERT INTO h (v) VALUES (9223372036854775807), (-9223372036854775808), (1e999), (18446744073709551616)',
    'SELECT 99999999999999999999999999999999999999 * 1e308, -1e999, 0x7fffffffffffffff + 1',
    `INSERT INTO h (v) VALUES ('a\0b'), (x'00ff00'), (char(0))`,
    'CREATE TABLE "ünïcödé" ("ключ" INTEGER PRIMARY KEY, "值", "🐢")',
    `SELECT '🐢' AS "🐢", 'ＳＥＬＥＣＴ', '\u202e'`,
    `SELECT ${'('.repeat(1500)}1${')'.repeat(1500)}`,
    `SELECT '${'x'.repeat(100_000)}'`,
    'SELECT ?, :a, @b, $c',
    'REINDEX',
    'ANALYZE',
    'CREATE TABLE nopk (a, b)',
  ]
}
