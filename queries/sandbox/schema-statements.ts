/**
 * Schema discovery in the sandbox: `DESCRIBE TABLE analytics.<t>` (or `DESC <t>`) and
 * `SHOW TABLES [FROM analytics]`, so a planner can find columns without leaving SQL.
 *
 * Why these two are safe, and nothing more is allowed:
 *  - the user's statement never runs. It is recognized (ClickHouse's parse tree, and for
 *    SHOW its canonical text) and replaced by a statement written here, naming a table
 *    taken from the analytics catalogue, never from the user's text;
 *  - DESCRIBE of anything else is refused: another database's table (billing, system…),
 *    a subquery (`DESCRIBE (SELECT … FROM billing…)`), a table function (`DESCRIBE
 *    url(…)` would fetch the URL to infer its schema), and any SETTINGS, FORMAT or INTO;
 *  - SHOW's parse tree does not tell `SHOW TABLES` from `SHOW DATABASES` or `SHOW TABLES
 *    LIKE …` (all are `ShowTables`), so its canonical text must be exactly one of the two
 *    allowed forms; every other SHOW is refused.
 */
import { withoutAlias, type AstNode } from './ast.js';
import { ANALYTICS_DB, SandboxRefusal, type Catalog } from './policy.js';

export interface SchemaStatement {
  /** What runs instead of the user's statement. */
  sql: string;
  columns: { name: string; type: string }[];
}

const DESCRIBE_COLUMNS = ['name', 'type', 'default_type', 'default_expression', 'comment', 'codec_expression', 'ttl_expression'].map((name) => ({ name, type: 'String' }));
const SHOW_FORMS = new Set(['SHOW TABLES', `SHOW TABLES FROM ${ANALYTICS_DB}`]);
const ALLOWED = `DESCRIBE TABLE ${ANALYTICS_DB}.<table> and SHOW TABLES [FROM ${ANALYTICS_DB}]`;

/** The statement's replacement when it is DESCRIBE or SHOW; undefined for anything else. */
export function schemaStatement(root: AstNode, canonical: string, catalog: Catalog): SchemaStatement | undefined {
  if (root.kind === 'ShowTables') {
    const text = canonical.trim().replace(/\s+/g, ' ');
    if (!SHOW_FORMS.has(text)) {
      throw new SandboxRefusal('sql_statement_refused', `only SELECT queries, ${ALLOWED} may run here; not ${text.slice(0, 80)}`, { statement: 'Show' });
    }
    return { sql: `SHOW TABLES FROM ${ANALYTICS_DB}`, columns: [{ name: 'name', type: 'String' }] };
  }
  if (root.kind !== 'DescribeQuery') return undefined;
  const [expr, ...rest] = root.children;
  if (rest.length > 0) {
    const clause = rest[0]!.kind === 'Set' ? 'SETTINGS' : rest[0]!.kind === 'Identifier' ? 'FORMAT' : 'INTO OUTFILE';
    const code = clause === 'SETTINGS' ? 'sql_settings_refused' : 'sql_output_refused';
    throw new SandboxRefusal(code, `${clause} is not allowed with DESCRIBE in the sandbox`, { clause });
  }
  const target = expr?.kind === 'TableExpression' && expr.children.length === 1 ? expr.children[0]! : undefined;
  if (target?.kind !== 'TableIdentifier') {
    throw new SandboxRefusal('sql_statement_refused', `DESCRIBE takes an analytics table here, not a ${target?.kind === 'Function' ? 'table function' : 'subquery or expression'} (${ALLOWED})`, {
      statement: 'Describe',
    });
  }
  const name = withoutAlias(target.arg);
  const dot = name.indexOf('.');
  const db = dot < 0 ? ANALYTICS_DB : name.slice(0, dot);
  const table = dot < 0 ? name : name.slice(dot + 1);
  if (db !== ANALYTICS_DB) throw new SandboxRefusal('sql_table_refused', `${name} cannot be described: only the analytics database can be read`, { table: name });
  if (!catalog.tables.has(table)) {
    throw new SandboxRefusal('sql_table_refused', `${name} is not a table of the analytics database`, { table: name, tables: [...catalog.tables.keys()].sort() });
  }
  return { sql: `DESCRIBE TABLE ${ANALYTICS_DB}.${quoteIdentifier(table)}`, columns: DESCRIBE_COLUMNS };
}

/** A catalogue name as a backquoted identifier (`\` and `` ` `` escaped). */
function quoteIdentifier(name: string): string {
  return `\`${name.replace(/\\/g, '\\\\').replace(/`/g, '\\`')}\``;
}
