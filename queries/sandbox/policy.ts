/**
 * What ad-hoc SQL may do, decided on ClickHouse's parse tree (ast.ts): one SELECT that
 * reads tables of the analytics database only. Each refusal names what was refused and
 * why, with a code a client can act on.
 *
 * The rules, and what each one closes:
 *  - the statement must be a SELECT: no INSERT/DELETE/UPDATE/ALTER…/OPTIMIZE (writes),
 *    no CREATE/DROP/RENAME/ATTACH/GRANT… (DDL), no SET/USE/SHOW/SYSTEM/EXPLAIN/KILL
 *    (DESCRIBE TABLE analytics.<t> and SHOW TABLES are recognized before this policy and
 *    replaced by statements of our own: schema-statements.ts);
 *  - every table is `analytics.<existing table>` or an unqualified name, which resolves in
 *    the sandbox's current database (analytics) or to a WITH alias; names of other
 *    databases (billing, audit, system, information_schema, …) are refused wherever they
 *    appear, also as the right side of IN;
 *  - table functions only from a list that reads no storage (numbers, zeros, values, …):
 *    remote, cluster, merge, file, url, s3, dictionary, view, … are refused;
 *  - functions that reach outside the query are refused: dictGet* (dictionaries),
 *    joinGet, file, environment probes, sleep;
 *  - no SETTINGS (limits are the sandbox's), no FORMAT (the API picks it), no INTO OUTFILE;
 *  - an analytics view is only as safe as its definition: views are checked recursively
 *    (sandbox.ts), and tables of other engines (Distributed, Merge, Dictionary, URL…),
 *    which could read elsewhere, are refused.
 */
import { walk, withoutAlias, type AstNode } from './ast.js';

export const ANALYTICS_DB = 'analytics';

export type RefusalCode =
  | 'sql_empty'
  | 'sql_too_long'
  | 'sql_syntax_error'
  | 'sql_missing_parameter'
  | 'sql_write_refused'
  | 'sql_ddl_refused'
  | 'sql_statement_refused'
  | 'sql_table_refused'
  | 'sql_table_function_refused'
  | 'sql_function_refused'
  | 'sql_settings_refused'
  | 'sql_output_refused'
  | 'sql_limit_exceeded'
  | 'sql_query_failed';

/** HTTP status per refusal: 403 for what the policy forbids, 422 for exceeded limits. */
export const REFUSAL_STATUS: Record<RefusalCode, number> = {
  sql_empty: 400,
  sql_too_long: 413,
  sql_syntax_error: 400,
  sql_missing_parameter: 400,
  sql_write_refused: 403,
  sql_ddl_refused: 403,
  sql_statement_refused: 403,
  sql_table_refused: 403,
  sql_table_function_refused: 403,
  sql_function_refused: 403,
  sql_settings_refused: 403,
  sql_output_refused: 403,
  sql_limit_exceeded: 422,
  sql_query_failed: 400,
};

export class SandboxRefusal extends Error {
  override name = 'SandboxRefusal';
  constructor(
    readonly code: RefusalCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }

  get status(): number {
    return REFUSAL_STATUS[this.code];
  }
}

/** The analytics database as the sandbox sees it; read with a trusted client. */
export interface Catalog {
  /** analytics table name → engine (`MergeTree`, `View`, …). */
  tables: Map<string, string>;
  /** Every database name on the server: their names are refused as qualifiers. */
  databases: Set<string>;
  /** Every table function's name (lower case): also refused on the right of IN. */
  tableFunctions: Set<string>;
}

/** `x IN <table function>(…)` reads a table function as a set. */
const IN_FUNCTIONS = new Set(['in', 'notin', 'globalin', 'globalnotin', 'nullin', 'notnullin', 'globalnullin', 'globalnotnullin']);

/** Read no storage: generators and inline data. */
const TABLE_FUNCTIONS_ALLOWED = new Set(['numbers', 'numbers_mt', 'zeros', 'zeros_mt', 'generateseries', 'generate_series', 'values']);

/** Functions that read outside the query's tables, probe the host, or only waste time. */
const FUNCTIONS_REFUSED = new Set([
  'file',
  'joinget',
  'joingetornull',
  'hascolumnintable',
  'getclienthttpheader',
  'catboostevaluate',
  'naivebayesclassifier',
  'filesystemavailable',
  'filesystemcapacity',
  'filesystemunreserved',
  'getserversetting',
  'getmergetreesetting',
  'getmacro',
  'hostname',
  'fqdn',
  'serveruuid',
  'tcpport',
  'getoskernelversion',
  'sleep',
  'sleepeachrow',
  'globalvariable',
  'addresstoline',
  'addresstolinewithinlines',
  'addresstosymbol',
  'demangle',
  'trap',
]);

/** Names that always count as databases, even on a server that hides them from this user. */
const ALWAYS_DATABASES = ['billing', 'audit', 'system', 'default', 'information_schema', 'INFORMATION_SCHEMA'];

const WRITE_KINDS = ['Insert', 'Delete', 'Update', 'Truncate', 'Optimize'];
const DDL_KINDS = ['Create', 'Drop', 'Alter', 'Rename', 'Attach', 'Detach', 'Undrop', 'Grant', 'Revoke', 'Move', 'Backup', 'Restore'];

export interface PolicyResult {
  /** Analytics views the statement reads: their definitions must pass too. */
  views: string[];
}

export function checkStatement(root: AstNode, catalog: Catalog): PolicyResult {
  checkStatementKind(root);
  checkOutputClauses(root);
  const views = new Set<string>();
  const databases = new Set([...catalog.databases, ...ALWAYS_DATABASES]);
  for (const node of walk(root)) {
    switch (node.kind) {
      case 'Set':
        throw new SandboxRefusal('sql_settings_refused', 'SETTINGS clauses are not allowed: the sandbox sets its own limits', { clause: 'SETTINGS' });
      case 'TableIdentifier':
        checkTable(withoutAlias(node.arg), catalog, databases, views);
        break;
      case 'Identifier':
        checkIdentifier(withoutAlias(node.arg), catalog, databases, views);
        break;
      case 'Function':
        if (node.parent?.kind === 'TableExpression' || isSetOperand(node, catalog)) checkTableFunction(withoutAlias(node.arg));
        else checkFunction(withoutAlias(node.arg));
        break;
      default:
        // A statement nested in a SELECT (the parser allows a few, e.g. EXPLAIN in FROM).
        if (node !== root && [...WRITE_KINDS, ...DDL_KINDS, 'Explain', 'Show', 'System', 'Kill'].some((k) => node.kind.startsWith(k))) {
          throw new SandboxRefusal('sql_statement_refused', `only SELECT queries may run here; found a nested ${node.kind}`);
        }
    }
  }
  return { views: [...views] };
}

function isSetOperand(node: AstNode, catalog: Catalog): boolean {
  const list = node.parent;
  const fn = list?.parent;
  return (
    list?.kind === 'ExpressionList' &&
    fn?.kind === 'Function' &&
    IN_FUNCTIONS.has(withoutAlias(fn.arg).toLowerCase()) &&
    list.children.indexOf(node) === 1 &&
    catalog.tableFunctions.has(withoutAlias(node.arg).toLowerCase())
  );
}

function checkStatementKind(root: AstNode): void {
  const kind = root.kind;
  if (kind === 'SelectWithUnionQuery') return;
  const name = kind.replace(/Query$/, '');
  const alterWrites = kind === 'AlterQuery' && [...walk(root)].some((n) => n.kind === 'AlterCommand' && /^(DELETE|UPDATE)\b/.test(n.arg));
  if (alterWrites || WRITE_KINDS.some((k) => kind.startsWith(k))) {
    throw new SandboxRefusal('sql_write_refused', `writes are not allowed: the sandbox is read-only (${name} statement)`, { statement: name });
  }
  if (DDL_KINDS.some((k) => kind.startsWith(k))) {
    throw new SandboxRefusal('sql_ddl_refused', `DDL is not allowed: the sandbox cannot create, change or drop anything (${name} statement)`, { statement: name });
  }
  throw new SandboxRefusal('sql_statement_refused', `only SELECT queries (and DESCRIBE TABLE analytics.<table>, SHOW TABLES) may run here, not ${name}`, { statement: name });
}

/** The root's children after the query list: INTO OUTFILE (a literal), FORMAT (an identifier), SETTINGS. */
function checkOutputClauses(root: AstNode): void {
  for (const child of root.children.slice(1)) {
    if (child.kind === 'Literal') throw new SandboxRefusal('sql_output_refused', 'INTO OUTFILE is not allowed: results come back in the response', { clause: 'INTO OUTFILE' });
    if (child.kind === 'Identifier') throw new SandboxRefusal('sql_output_refused', 'FORMAT is not allowed in the SQL: choose the output with the format field (json or csv)', { clause: 'FORMAT' });
    if (child.kind === 'Set') throw new SandboxRefusal('sql_settings_refused', 'SETTINGS clauses are not allowed: the sandbox sets its own limits', { clause: 'SETTINGS' });
    throw new SandboxRefusal('sql_statement_refused', `unexpected clause in the statement (${child.kind})`);
  }
}

function checkTable(name: string, catalog: Catalog, databases: Set<string>, views: Set<string>): void {
  const dot = name.indexOf('.');
  if (dot < 0) {
    // Unqualified: the sandbox's current database is analytics, or it names a WITH alias.
    if (catalog.tables.get(name) === 'View') views.add(name);
    else if (catalog.tables.has(name)) checkEngine(name, catalog);
    return;
  }
  const db = name.slice(0, dot);
  const table = name.slice(dot + 1);
  if (db !== ANALYTICS_DB) {
    const why = databases.has(db) ? `the ${db} database is outside the sandbox` : 'only the analytics database can be read';
    throw new SandboxRefusal('sql_table_refused', `${name} cannot be read: ${why}`, { table: name });
  }
  if (!catalog.tables.has(table)) {
    throw new SandboxRefusal('sql_table_refused', `${name} is not a table of the analytics database`, { table: name, tables: [...catalog.tables.keys()].sort() });
  }
  if (catalog.tables.get(table) === 'View') views.add(table);
  else checkEngine(table, catalog);
}

function checkEngine(table: string, catalog: Catalog): void {
  const engine = catalog.tables.get(table) ?? '';
  if (!engine.endsWith('MergeTree')) {
    throw new SandboxRefusal('sql_table_refused', `analytics.${table} is a ${engine} table, which could read data outside analytics`, { table: `analytics.${table}`, engine });
  }
}

/**
 * A dotted identifier is a column of an aliased table (`f.hour`), or a table (`x IN
 * billing.usage_hourly`, `db.table.column`). A first part naming another database is
 * refused; `analytics.t…` must name an analytics table.
 */
function checkIdentifier(name: string, catalog: Catalog, databases: Set<string>, views: Set<string>): void {
  const dot = name.indexOf('.');
  if (dot < 0) {
    if (catalog.tables.get(name) === 'View') views.add(name); // `x IN fleet_usage_hourly`
    return;
  }
  const first = name.slice(0, dot);
  if (first === ANALYTICS_DB) {
    const rest = name.slice(dot + 1);
    const table = [...catalog.tables.keys()].find((t) => rest === t || rest.startsWith(`${t}.`));
    if (!table) throw new SandboxRefusal('sql_table_refused', `${name} does not name a table of the analytics database`, { identifier: name });
    if (catalog.tables.get(table) === 'View') views.add(table);
    else checkEngine(table, catalog);
    return;
  }
  if (databases.has(first) || databases.has(first.toLowerCase())) {
    throw new SandboxRefusal('sql_table_refused', `${name} refers to the ${first} database, which is outside the sandbox (if ${first} is an alias, rename it)`, { identifier: name });
  }
}

function checkTableFunction(name: string): void {
  if (!TABLE_FUNCTIONS_ALLOWED.has(name.toLowerCase())) {
    throw new SandboxRefusal(
      'sql_table_function_refused',
      `table function ${name}() is not allowed: it can read outside the analytics database (allowed: numbers, zeros, generateSeries, values)`,
      { function: name },
    );
  }
}

function checkFunction(name: string): void {
  const lower = name.toLowerCase();
  if (lower.startsWith('dict')) {
    throw new SandboxRefusal('sql_function_refused', `${name}() is not allowed: dictionaries are outside the analytics database`, { function: name });
  }
  if (FUNCTIONS_REFUSED.has(lower) || lower.startsWith('__')) {
    throw new SandboxRefusal('sql_function_refused', `${name}() is not allowed in the sandbox: it reaches outside the query's analytics tables`, { function: name });
  }
}
