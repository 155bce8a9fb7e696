/**
 * Structure-aware mutation for the fuzz targets: a valid input is generated first, then
 * a few mutations are applied to it, so most cases get past the first byte check and
 * reach the deep code. Three layers, each driven by fast-check so a failure shrinks:
 *
 * - bytes and text: flip, set, truncate, delete, duplicate, repeat (nesting deepened),
 *   insert a token of the format (`i`, `e`, `4:`, `%`, `&a`, …), splice in a donor,
 *   replace a decimal number with an awkward one (huge, negative, leading zeros, 2^53);
 * - trees (decoded bencode, JSON, YAML documents): drop, add or duplicate a key, swap
 *   a value for one of another type or an awkward one, wrap it, nest it deeper.
 *
 * Nothing here imports the test runner: the fuzz script compiles and runs it too.
 */
import fc from 'fast-check';

/** Decimal texts that sit on a boundary somewhere: sign, zero, 2^31, 2^32, 2^53, 2^64, floats. */
export const AWKWARD_NUMBERS = [
  '0', '-0', '00', '01', '-01', '1', '-1', '+1', '7', '255', '256', '65535', '65536', '16384', '16385',
  '2147483647', '2147483648', '4294967295', '4294967296', '-4294967296', '9007199254740991', '9007199254740992',
  '-9007199254740991', '-9007199254740992', '18446744073709551615', '18446744073709551616',
  '99999999999999999999999999999999999999', '1e400', '1.5', '-1.5', '0x10', '1_000', ' 1', '',
];

/** Property names that behave differently from others on a plain JavaScript object. */
export const PROTOTYPE_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'valueOf', 'hasOwnProperty', 'toJSON'];

export type ByteOp =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'set'; at: number; value: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'delete'; at: number; length: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'token'; at: number; token: number }
  | { kind: 'duplicate'; at: number; length: number; to: number }
  | { kind: 'repeat'; at: number; length: number; times: number }
  | { kind: 'splice'; at: number; from: number; length: number }
  | { kind: 'number'; which: number; value: number };

const position = fc.nat({ max: 1 << 20 });
const shortLength = fc.integer({ min: 1, max: 64 });

/** One mutation of a byte string; `tokens` are the format's own short words. */
export function byteOp(tokens: readonly string[]): fc.Arbitrary<ByteOp> {
  return fc.oneof(
    fc.record({ kind: fc.constant('flip' as const), at: position, bit: fc.integer({ min: 0, max: 7 }) }),
    fc.record({ kind: fc.constant('set' as const), at: position, value: fc.integer({ min: 0, max: 255 }) }),
    fc.record({ kind: fc.constant('truncate' as const), at: position }),
    fc.record({ kind: fc.constant('delete' as const), at: position, length: shortLength }),
    fc.record({ kind: fc.constant('insert' as const), at: position, bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
    fc.record({ kind: fc.constant('token' as const), at: position, token: fc.nat({ max: tokens.length - 1 }) }),
    fc.record({ kind: fc.constant('duplicate' as const), at: position, length: shortLength, to: position }),
    fc.record({ kind: fc.constant('repeat' as const), at: position, length: fc.integer({ min: 1, max: 4 }), times: fc.integer({ min: 2, max: 200 }) }),
    fc.record({ kind: fc.constant('splice' as const), at: position, from: position, length: fc.integer({ min: 1, max: 256 }) }),
    fc.record({ kind: fc.constant('number' as const), which: fc.nat({ max: 64 }), value: fc.nat({ max: AWKWARD_NUMBERS.length - 1 }) }),
  );
}

/** Applies `ops` in order; `donor` supplies bytes for splices (another valid input). */
export function applyByteOps(input: Uint8Array, ops: readonly ByteOp[], tokens: readonly string[], donor: Uint8Array = input): Buffer {
  let b = Buffer.from(input);
  for (const op of ops) {
    const at = (n: number) => (b.length === 0 ? 0 : n % (b.length + 1));
    switch (op.kind) {
      case 'flip':
        if (b.length > 0) b[op.at % b.length]! ^= 1 << op.bit;
        break;
      case 'set':
        if (b.length > 0) b[op.at % b.length] = op.value;
        break;
      case 'truncate':
        b = b.subarray(0, at(op.at));
        break;
      case 'delete': {
        const p = at(op.at);
        b = Buffer.concat([b.subarray(0, p), b.subarray(p + op.length)]);
        break;
      }
      case 'insert': {
        const p = at(op.at);
        b = Buffer.concat([b.subarray(0, p), op.bytes, b.subarray(p)]);
        break;
      }
      case 'token': {
        const p = at(op.at);
        b = Buffer.concat([b.subarray(0, p), Buffer.from(tokens[op.token % tokens.length]!, 'latin1'), b.subarray(p)]);
        break;
      }
      case 'duplicate': {
        const p = at(op.at);
        const slice = Buffer.from(b.subarray(p, p + op.length));
        const q = at(op.to);
        b = Buffer.concat([b.subarray(0, q), slice, b.subarray(q)]);
        break;
      }
      case 'repeat': {
        // Repeating a slice like "l" or "d1:a" deepens nesting; "i1e" makes long lists.
        const p = at(op.at);
        const slice = b.subarray(p, p + op.length);
        b = Buffer.concat([b.subarray(0, p), ...new Array<Buffer>(op.times).fill(slice), b.subarray(p + slice.length)]);
        break;
      }
      case 'splice': {
        const from = donor.length === 0 ? 0 : op.from % donor.length;
        b = Buffer.concat([b.subarray(0, at(op.at)), Buffer.from(donor.subarray(from, from + op.length))]);
        break;
      }
      case 'number':
        b = Buffer.from(replaceNumber(b.toString('latin1'), op.which, AWKWARD_NUMBERS[op.value]!), 'latin1');
        break;
    }
  }
  return b;
}

/** `valid` mutated by one to `maxOps` byte mutations (a donor from `valid` for splices). */
export function mutatedBytes(valid: fc.Arbitrary<Uint8Array>, tokens: readonly string[], maxOps = 4): fc.Arbitrary<Buffer> {
  return fc
    .tuple(valid, fc.array(byteOp(tokens), { minLength: 1, maxLength: maxOps }), valid)
    .map(([input, ops, donor]) => applyByteOps(input, ops, tokens, donor));
}

/**
 * Text of any UTF-16 code units: ASCII, latin1, the rest of the BMP, astral characters
 * and lone surrogates. (fast-check's `unit: 'binary'` strings do the same, but each one
 * built costs a map of every code point, a second or more at start-up.)
 */
export function anyText(constraints: { minLength?: number; maxLength: number }): fc.Arbitrary<string> {
  const unit = fc.oneof(
    fc.integer({ min: 0x20, max: 0x7e }),
    fc.integer({ min: 0, max: 0xff }),
    fc.integer({ min: 0, max: 0xffff }),
    fc.integer({ min: 0xd800, max: 0xdfff }),
    fc.integer({ min: 0x10000, max: 0x10ffff }),
  );
  return fc.array(unit, constraints).map((codes) => codes.map((c) => (c > 0xffff ? String.fromCodePoint(c) : String.fromCharCode(c))).join(''));
}

export type TextOp =
  | { kind: 'delete'; at: number; length: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; text: string }
  | { kind: 'token'; at: number; token: number }
  | { kind: 'duplicate'; at: number; length: number; to: number }
  | { kind: 'repeat'; at: number; length: number; times: number }
  | { kind: 'replace-char'; at: number; char: string }
  | { kind: 'number'; which: number; value: number };

/** One mutation of a text; `tokens` are the format's own short words. */
export function textOp(tokens: readonly string[]): fc.Arbitrary<TextOp> {
  const insertText = fc.oneof(fc.string({ minLength: 1, maxLength: 8 }), anyText({ minLength: 1, maxLength: 8 }));
  return fc.oneof(
    fc.record({ kind: fc.constant('delete' as const), at: position, length: shortLength }),
    fc.record({ kind: fc.constant('truncate' as const), at: position }),
    fc.record({ kind: fc.constant('insert' as const), at: position, text: insertText }),
    fc.record({ kind: fc.constant('token' as const), at: position, token: fc.nat({ max: tokens.length - 1 }) }),
    fc.record({ kind: fc.constant('token' as const), at: position, token: fc.nat({ max: tokens.length - 1 }) }),
    fc.record({ kind: fc.constant('duplicate' as const), at: position, length: shortLength, to: position }),
    fc.record({ kind: fc.constant('repeat' as const), at: position, length: fc.integer({ min: 1, max: 6 }), times: fc.integer({ min: 2, max: 100 }) }),
    fc.record({ kind: fc.constant('replace-char' as const), at: position, char: anyText({ minLength: 1, maxLength: 1 }) }),
    fc.record({ kind: fc.constant('number' as const), which: fc.nat({ max: 32 }), value: fc.nat({ max: AWKWARD_NUMBERS.length - 1 }) }),
  );
}

export function applyTextOps(input: string, ops: readonly TextOp[], tokens: readonly string[]): string {
  let s = input;
  for (const op of ops) {
    const at = (n: number) => (s.length === 0 ? 0 : n % (s.length + 1));
    switch (op.kind) {
      case 'delete': {
        const p = at(op.at);
        s = s.slice(0, p) + s.slice(p + op.length);
        break;
      }
      case 'truncate':
        s = s.slice(0, at(op.at));
        break;
      case 'insert': {
        const p = at(op.at);
        s = s.slice(0, p) + op.text + s.slice(p);
        break;
      }
      case 'token': {
        const p = at(op.at);
        s = s.slice(0, p) + tokens[op.token % tokens.length]! + s.slice(p);
        break;
      }
      case 'duplicate': {
        const p = at(op.at);
        const slice = s.slice(p, p + op.length);
        const q = at(op.to);
        s = s.slice(0, q) + slice + s.slice(q);
        break;
      }
      case 'repeat': {
        const p = at(op.at);
        const slice = s.slice(p, p + op.length);
        s = s.slice(0, p) + slice.repeat(op.times) + s.slice(p + slice.length);
        break;
      }
      case 'replace-char':
        if (s.length > 0) {
          const p = op.at % s.length;
          s = s.slice(0, p) + op.char + s.slice(p + 1);
        }
        break;
      case 'number':
        s = replaceNumber(s, op.which, AWKWARD_NUMBERS[op.value]!);
        break;
    }
  }
  return s;
}

export function mutatedText(valid: fc.Arbitrary<string>, tokens: readonly string[], maxOps = 4): fc.Arbitrary<string> {
  return fc.tuple(valid, fc.array(textOp(tokens), { minLength: 1, maxLength: maxOps })).map(([input, ops]) => applyTextOps(input, ops, tokens));
}

/** Replaces the `which`-th run of decimal digits (modulo how many there are) with `value`. */
function replaceNumber(s: string, which: number, value: string): string {
  const runs: [number, number][] = [];
  const re = /\d+/g;
  for (let m = re.exec(s); m !== null; m = re.exec(s)) runs.push([m.index, m.index + m[0].length]);
  if (runs.length === 0) return s;
  const [start, end] = runs[which % runs.length]!;
  return s.slice(0, start) + value + s.slice(end);
}

// ---- trees ---------------------------------------------------------------------------

/** A decoded document: JSON or YAML values, or bencode (numbers, Buffers, lists, dictionaries). */
export type Tree = unknown;

export type TreeOp =
  | { kind: 'replace'; at: number; value: Tree }
  | { kind: 'delete'; at: number }
  | { kind: 'add'; at: number; key: string; value: Tree }
  | { kind: 'duplicate'; at: number }
  | { kind: 'wrap-list'; at: number }
  | { kind: 'wrap-dict'; at: number; key: string }
  | { kind: 'deepen'; at: number; depth: number };

/**
 * One mutation of a tree. `leaf` makes replacement values (of any type the format has);
 * `key` makes dictionary keys (the format's own keys, prototype names, random text).
 */
export function treeOp(leaf: fc.Arbitrary<Tree>, key: fc.Arbitrary<string>): fc.Arbitrary<TreeOp> {
  return fc.oneof(
    { weight: 4, arbitrary: fc.record({ kind: fc.constant('replace' as const), at: position, value: leaf }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), at: position }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('add' as const), at: position, key, value: leaf }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('duplicate' as const), at: position }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('wrap-list' as const), at: position }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('wrap-dict' as const), at: position, key }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('deepen' as const), at: position, depth: fc.integer({ min: 1, max: 100 }) }) },
  );
}

/** A copy of `tree` with `ops` applied; the input is never changed. */
export function applyTreeOps(tree: Tree, ops: readonly TreeOp[]): Tree {
  let root = cloneTree(tree);
  for (const op of ops) {
    const nodes = listNodes(root);
    const node = nodes[op.at % nodes.length]!;
    const set = (value: Tree) => {
      if (node.parent === undefined) root = value;
      else (node.parent as Record<string | number, Tree>)[node.key!] = value;
    };
    switch (op.kind) {
      case 'replace':
        set(cloneTree(op.value));
        break;
      case 'delete':
        if (node.parent === undefined) root = undefined;
        else if (Array.isArray(node.parent)) node.parent.splice(node.key as number, 1);
        else delete (node.parent as Record<string, Tree>)[node.key as string];
        break;
      case 'add':
        if (isDict(node.value)) defineKey(node.value, op.key, cloneTree(op.value));
        else if (Array.isArray(node.value)) node.value.push(cloneTree(op.value));
        else set(cloneTree(op.value));
        break;
      case 'duplicate':
        if (Array.isArray(node.parent)) node.parent.splice(node.key as number, 0, cloneTree(node.value));
        else set([node.value, cloneTree(node.value)]);
        break;
      case 'wrap-list':
        set([node.value]);
        break;
      case 'wrap-dict': {
        const d: Record<string, Tree> = {};
        defineKey(d, op.key, node.value);
        set(d);
        break;
      }
      case 'deepen': {
        let v: Tree = node.value;
        for (let i = 0; i < op.depth; i++) v = [v];
        set(v);
        break;
      }
    }
  }
  return root;
}

export function mutatedTree(valid: fc.Arbitrary<Tree>, leaf: fc.Arbitrary<Tree>, key: fc.Arbitrary<string>, maxOps = 3): fc.Arbitrary<Tree> {
  return fc.tuple(valid, fc.array(treeOp(leaf, key), { minLength: 1, maxLength: maxOps })).map(([t, ops]) => applyTreeOps(t, ops));
}

interface TreeNode {
  value: Tree;
  parent: Tree[] | Record<string, Tree> | undefined;
  key: string | number | undefined;
}

function listNodes(root: Tree): TreeNode[] {
  const out: TreeNode[] = [];
  const visit = (value: Tree, parent: TreeNode['parent'], key: TreeNode['key'], depth: number) => {
    out.push({ value, parent, key });
    if (depth > 64) return;
    if (Array.isArray(value)) value.forEach((v, i) => visit(v, value, i, depth + 1));
    else if (isDict(value)) for (const k of Object.keys(value)) visit(value[k], value, k, depth + 1);
  };
  visit(root, undefined, undefined, 0);
  return out;
}

export function isDict(v: unknown): v is Record<string, Tree> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

/** An own property even for `__proto__`, as JSON.parse and decoders make it. */
function defineKey(d: Record<string, Tree>, key: string, value: Tree): void {
  Object.defineProperty(d, key, { value, enumerable: true, writable: true, configurable: true });
}

function cloneTree(t: Tree, depth = 0): Tree {
  if (depth > 400) return t;
  if (Buffer.isBuffer(t)) return Buffer.from(t);
  if (t instanceof Uint8Array) return Uint8Array.from(t);
  if (Array.isArray(t)) return t.map((v) => cloneTree(v, depth + 1));
  if (isDict(t)) {
    const out: Record<string, Tree> = Object.getPrototypeOf(t) === null ? (Object.create(null) as Record<string, Tree>) : {};
    for (const k of Object.keys(t)) defineKey(out, k, cloneTree(t[k], depth + 1));
    return out;
  }
  return t;
}

/** Awkward JSON-ish leaves: every type, boundary numbers, prototype names, long and odd text. */
export function awkwardJsonLeaf(): fc.Arbitrary<Tree> {
  return fc.oneof(
    fc.constantFrom<Tree>(null, true, false, 0, -0, -1, 1.5, 2 ** 53, -(2 ** 53), 1e308, Number.MAX_SAFE_INTEGER, '', ' ', [], {}, 'true', '0', '-1', 'NaN'),
    fc.constantFrom(...AWKWARD_NUMBERS),
    fc.constantFrom(...PROTOTYPE_KEYS),
    fc.string({ maxLength: 12 }),
    anyText({ maxLength: 12 }),
    fc.integer(),
    fc.double(),
    fc.constant('x'.repeat(5000)),
    fc.jsonValue({ maxDepth: 2 }),
  );
}
