/**
 * ClickHouse's own parse of a statement, as a tree: the text of `EXPLAIN AST` (one node
 * per line, one space of indentation per level), e.g.
 *
 *   SelectWithUnionQuery (children 1)
 *    ExpressionList (children 1)
 *     SelectQuery (children 2)
 *      TablesInSelectQuery (children 1)
 *       TablesInSelectQueryElement (children 1)
 *        TableExpression (children 1)
 *         TableIdentifier analytics.fleet_usage_hourly (alias f)
 *
 * The sandbox reads what the statement is and what it touches from this tree, never from
 * the SQL text itself.
 */

export interface AstNode {
  /** The node type: `SelectWithUnionQuery`, `TableIdentifier`, `Function`, `Set`, … */
  kind: string;
  /**
   * What follows the type on the line, without ` (children N)`: a table or column name
   * (with ` (alias x)` when aliased), a function name, a literal.
   */
  arg: string;
  children: AstNode[];
  parent?: AstNode;
}

export class AstParseError extends Error {
  override name = 'AstParseError';
}

export function parseExplainAst(text: string): AstNode {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  if (lines.length === 0) throw new AstParseError('EXPLAIN AST returned nothing');
  const stack: { depth: number; node: AstNode }[] = [];
  let root: AstNode | undefined;
  for (const line of lines) {
    const depth = line.length - line.trimStart().length;
    const node = parseLine(line.trim());
    while (stack.length > 0 && stack.at(-1)!.depth >= depth) stack.pop();
    const parent = stack.at(-1)?.node;
    if (parent) {
      node.parent = parent;
      parent.children.push(node);
    } else if (root) {
      throw new AstParseError('EXPLAIN AST returned more than one statement');
    } else {
      root = node;
    }
    stack.push({ depth, node });
  }
  return root!;
}

function parseLine(text: string): AstNode {
  const withoutCount = text.replace(/\s*\(children \d+\)$/, '');
  const space = withoutCount.indexOf(' ');
  const kind = space < 0 ? withoutCount : withoutCount.slice(0, space);
  const arg = space < 0 ? '' : withoutCount.slice(space + 1).trim();
  return { kind, arg, children: [] };
}

/** `analytics.fleet_usage_hourly (alias f)` → `analytics.fleet_usage_hourly`. */
export function withoutAlias(arg: string): string {
  const i = arg.indexOf(' (alias ');
  return i < 0 ? arg : arg.slice(0, i);
}

export function* walk(node: AstNode): Generator<AstNode> {
  yield node;
  for (const child of node.children) yield* walk(child);
}
