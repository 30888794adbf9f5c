/**
 * OTLP/HTTP metrics bodies (ExportMetricsServiceRequest) → a small plain model, in both
 * encodings: binary protobuf (`application/x-protobuf`) and OTLP/JSON (`application/json`).
 *
 * Why protobufjs over vendored `.proto` files (proto/README.md) rather than the code that
 * @opentelemetry/otlp-transformer ships: that package (0.2xx) only *serializes* requests
 * and decodes *responses* (it is the exporter's side); it cannot decode a request, and it
 * is a development dependency of this project. The upstream `.proto` files are the
 * protocol's own definition, loaded at start-up by protobufjs (a runtime dependency), so a
 * field added upstream is a file copy away and nothing here is generated code to keep in step.
 *
 * Both encodings go through the same protobufjs type (decode or fromObject), then
 * `toModel` reads only what billing needs: names, units, temporality, monotonicity, times
 * in exact nanoseconds (BigInt), values, attributes as strings. Everything that cannot be
 * read is an `OtlpDecodeError` (a 400), never an exception that becomes a 500.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

const PROTO_DIR = fileURLToPath(new URL('./proto/', import.meta.url));
const SERVICE_PROTO = 'opentelemetry/proto/collector/metrics/v1/metrics_service.proto';

/** The body could not be read as an ExportMetricsServiceRequest. */
export class OtlpDecodeError extends Error {
  override name = 'OtlpDecodeError';
}

/** More data points than one request may carry (OTLP_MAX_DATA_POINTS): a 413. */
export class TooManyDataPointsError extends Error {
  override name = 'TooManyDataPointsError';
}

export const AGGREGATION_TEMPORALITY = { unspecified: 0, delta: 1, cumulative: 2 } as const;
/** DataPointFlags.FLAG_NO_RECORDED_VALUE: a staleness marker, not a value. */
const NO_RECORDED_VALUE = 1;

/** Most attributes one resource or data point may carry; the semantic conventions need a dozen. */
export const MAX_ATTRIBUTES = 128;
/** Attribute values nested deeper than this (arrays of kvlists of…) are written as "[nested]". */
const MAX_VALUE_DEPTH = 4;
/** OTLP/JSON nests about 12 levels deep with attribute values; deeper text is refused unparsed. */
const MAX_JSON_DEPTH = 64;

export interface NumberPoint {
  attributes: Record<string, string>;
  startNs: bigint;
  timeNs: bigint;
  /** undefined: no value, or flagged "no recorded value". */
  value: number | undefined;
  /** An as_int beyond ±2^53: cannot be tracked exactly as a number. */
  inexactInt: boolean;
}

export type MetricData =
  | { type: 'gauge'; points: NumberPoint[] }
  | { type: 'sum'; temporality: number; monotonic: boolean; points: NumberPoint[] }
  | { type: 'histogram' | 'exponential_histogram' | 'summary'; pointCount: number }
  | { type: 'none' };

export interface OtlpMetric {
  name: string;
  unit: string;
  data: MetricData;
}
export interface OtlpScope {
  name: string;
  version: string;
  metrics: OtlpMetric[];
}
export interface OtlpResource {
  attributes: Record<string, string>;
  /** Set when the resource's attributes broke a limit: every point of it is rejected with this. */
  problem?: string;
  scopes: OtlpScope[];
}
export interface OtlpRequest {
  resources: OtlpResource[];
  /** Every data point of any type: what `rejected_data_points` is counted against. */
  dataPoints: number;
}

// --- protobufjs types, loaded once ------------------------------------------------------

function loadRoot(): protobuf.Root {
  const root = new protobuf.Root();
  // Imports are written from the proto root ("opentelemetry/proto/..."): resolve them there.
  root.resolvePath = (_origin, target) => (path.isAbsolute(target) ? target : path.join(PROTO_DIR, target));
  root.loadSync(SERVICE_PROTO);
  // google.rpc.Status, the body of an OTLP/HTTP error, declared here: code (1) and
  // message (2). Its third field, details (repeated Any), is never sent, so not declared.
  root.define('google.rpc').add(new protobuf.Type('Status').add(new protobuf.Field('code', 1, 'int32')).add(new protobuf.Field('message', 2, 'string')));
  root.resolveAll();
  return root;
}

let types: { request: protobuf.Type; response: protobuf.Type; status: protobuf.Type } | undefined;
function protoTypes() {
  if (!types) {
    const root = loadRoot();
    types = {
      request: root.lookupType('opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest'),
      response: root.lookupType('opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceResponse'),
      status: root.lookupType('google.rpc.Status'),
    };
  }
  return types;
}

/** Loads the definitions now, so a broken vendored file stops start-up rather than the first request. */
export function loadOtlpDefinitions(): void {
  protoTypes();
}

// --- decoding ---------------------------------------------------------------------------

export function decodeProtobufRequest(body: Uint8Array, maxDataPoints: number): OtlpRequest {
  let message: protobuf.Message;
  try {
    message = protoTypes().request.decode(body);
  } catch (err) {
    throw new OtlpDecodeError(`the body is not a valid protobuf ExportMetricsServiceRequest: ${(err as Error).message}`);
  }
  return toModel(message as unknown as Msg, maxDataPoints);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function decodeJsonRequest(body: Uint8Array, maxDataPoints: number): OtlpRequest {
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    throw new OtlpDecodeError('the body is not valid UTF-8');
  }
  if (jsonDeeperThan(text, MAX_JSON_DEPTH)) throw new OtlpDecodeError(`JSON nested deeper than ${MAX_JSON_DEPTH} levels is refused`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new OtlpDecodeError(`the body is not valid JSON: ${(err as Error).message}`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new OtlpDecodeError('the body must be a JSON object (an ExportMetricsServiceRequest)');
  let message: protobuf.Message;
  try {
    // OTLP/JSON is the proto3 JSON mapping with lowerCamelCase names, integer enums and
    // 64-bit integers as decimal strings: what protobufjs's fromObject reads.
    message = protoTypes().request.fromObject(json as Record<string, unknown>);
  } catch (err) {
    throw new OtlpDecodeError(`the body is not an OTLP/JSON ExportMetricsServiceRequest: ${(err as Error).message}`);
  }
  return toModel(message as unknown as Msg, maxDataPoints);
}

/** Whether JSON text nests deeper than `max` (strings skipped): checked before JSON.parse builds it. */
function jsonDeeperThan(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}

// The decoded message, as far as it is read here (protobufjs camelCases field names).
type Long = { toString(): string };
interface Msg {
  [k: string]: unknown;
}

function toModel(req: Msg, maxDataPoints: number): OtlpRequest {
  let dataPoints = 0;
  const count = (n: number) => {
    dataPoints += n;
    if (dataPoints > maxDataPoints) throw new TooManyDataPointsError(`a request may carry at most ${maxDataPoints} data points`);
  };
  const resources: OtlpResource[] = [];
  for (const rm of list(req.resourceMetrics)) {
    const attrs = list((rm.resource as Msg | undefined)?.attributes);
    const resource: OtlpResource = { attributes: {}, scopes: [] };
    if (attrs.length > MAX_ATTRIBUTES) resource.problem = `the resource has ${attrs.length} attributes; at most ${MAX_ATTRIBUTES} are read`;
    else resource.attributes = attributesOf(attrs);
    for (const sm of list(rm.scopeMetrics)) {
      const scope = (sm.scope as Msg | undefined) ?? {};
      const metrics: OtlpMetric[] = [];
      for (const m of list(sm.metrics)) {
        const data = metricData(m);
        count('points' in data ? data.points.length : 'pointCount' in data ? data.pointCount : 0);
        metrics.push({ name: str(m.name), unit: str(m.unit), data });
      }
      resource.scopes.push({ name: str(scope.name), version: str(scope.version), metrics });
    }
    resources.push(resource);
  }
  return { resources, dataPoints };
}

function metricData(m: Msg): MetricData {
  const which = m.data as string | undefined;
  if (which === 'gauge') return { type: 'gauge', points: list((m.gauge as Msg).dataPoints).map(numberPoint) };
  if (which === 'sum') {
    const sum = m.sum as Msg;
    return { type: 'sum', temporality: Number(sum.aggregationTemporality ?? 0), monotonic: sum.isMonotonic === true, points: list(sum.dataPoints).map(numberPoint) };
  }
  if (which === 'histogram' || which === 'exponentialHistogram' || which === 'summary') {
    const type = which === 'exponentialHistogram' ? 'exponential_histogram' : which;
    return { type, pointCount: list((m[which] as Msg).dataPoints).length };
  }
  return { type: 'none' };
}

function numberPoint(p: Msg): NumberPoint {
  const attrs = list(p.attributes);
  const flags = Number(p.flags ?? 0);
  let value: number | undefined;
  let inexactInt = false;
  if ((flags & NO_RECORDED_VALUE) === 0) {
    if (p.value === 'asDouble') value = Number(p.asDouble);
    else if (p.value === 'asInt') {
      const big = toBigInt(p.asInt);
      value = Number(big);
      inexactInt = big > BigInt(Number.MAX_SAFE_INTEGER) || big < -BigInt(Number.MAX_SAFE_INTEGER);
    }
  }
  return {
    // Too many attributes: the point keeps none and is rejected by the caller (see tooManyAttributes).
    attributes: attrs.length > MAX_ATTRIBUTES ? { [TOO_MANY_ATTRIBUTES]: String(attrs.length) } : attributesOf(attrs),
    startNs: toBigInt(p.startTimeUnixNano),
    timeNs: toBigInt(p.timeUnixNano),
    value,
    inexactInt,
  };
}

/** A key no OTLP attribute can have (NUL): marks a point whose attribute list broke the limit. */
export const TOO_MANY_ATTRIBUTES = '\u0000too_many_attributes';

function attributesOf(kvs: Msg[]): Record<string, string> {
  const out: Record<string, string> = Object.create(null);
  for (const kv of kvs) {
    const key = str(kv.key);
    if (key === '' || key in out) continue; // the first of repeated keys wins
    out[key] = anyValueText(kv.value as Msg | undefined, 0);
  }
  return out;
}

/** An attribute value as text, as the Prometheus translation writes non-string values. */
function anyValueText(v: Msg | undefined, depth: number): string {
  if (!v) return '';
  switch (v.value) {
    case 'stringValue':
      return str(v.stringValue);
    case 'boolValue':
      return v.boolValue ? 'true' : 'false';
    case 'intValue':
      return toBigInt(v.intValue).toString();
    case 'doubleValue':
      return String(Number(v.doubleValue));
    case 'bytesValue':
      return Buffer.from(v.bytesValue as Uint8Array).toString('base64');
    case 'arrayValue':
    case 'kvlistValue': {
      if (depth >= MAX_VALUE_DEPTH) return '[nested]';
      const inner = list((v[v.value] as Msg).values);
      if (v.value === 'arrayValue') return JSON.stringify(inner.map((x) => anyValueText(x, depth + 1)));
      return JSON.stringify(Object.fromEntries(inner.map((kv) => [str(kv.key), anyValueText(kv.value as Msg | undefined, depth + 1)])));
    }
    default:
      return '';
  }
}

function list(v: unknown): Msg[] {
  return Array.isArray(v) ? (v as Msg[]) : [];
}
function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}
function toBigInt(v: unknown): bigint {
  if (v === undefined || v === null) return 0n;
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number') return Number.isFinite(v) ? BigInt(Math.trunc(v)) : 0n;
  try {
    return BigInt((v as Long).toString());
  } catch {
    return 0n;
  }
}

// --- encoding answers -------------------------------------------------------------------

export type OtlpEncoding = 'protobuf' | 'json';

export interface PartialSuccess {
  rejectedDataPoints: number;
  errorMessage: string;
}

/**
 * ExportMetricsServiceResponse. On full success `partial_success` is left unset, as the
 * specification asks; otherwise it carries the count and the reasons.
 */
export function encodeResponse(encoding: OtlpEncoding, partial: PartialSuccess | undefined): Buffer | string {
  const body = partial ? { partialSuccess: { rejectedDataPoints: partial.rejectedDataPoints, errorMessage: partial.errorMessage } } : {};
  if (encoding === 'json') {
    return JSON.stringify(partial ? { partialSuccess: { rejectedDataPoints: String(partial.rejectedDataPoints), errorMessage: partial.errorMessage } } : {});
  }
  const { response } = protoTypes();
  return Buffer.from(response.encode(response.fromObject(body)).finish());
}

/** google.rpc.Status: the body of an OTLP/HTTP error answer (code: the gRPC code the status maps to). */
export function encodeStatus(encoding: OtlpEncoding, code: number, message: string): Buffer | string {
  if (encoding === 'json') return JSON.stringify({ code, message });
  const { status } = protoTypes();
  return Buffer.from(status.encode(status.fromObject({ code, message })).finish());
}

/** For tests and tools: decodes an answer this module encoded. */
export function decodeResponse(body: Uint8Array): { partialSuccess?: { rejectedDataPoints: string; errorMessage: string } } {
  const { response } = protoTypes();
  return response.toObject(response.decode(body), { longs: String }) as never;
}
export function decodeStatus(body: Uint8Array): { code?: number; message?: string } {
  const { status } = protoTypes();
  return status.toObject(status.decode(body)) as never;
}

/** For tests and tools: an ExportMetricsServiceRequest written in its OTLP/JSON shape, as protobuf bytes. */
export function encodeRequest(json: Record<string, unknown>): Uint8Array {
  const { request } = protoTypes();
  return request.encode(request.fromObject(json)).finish();
}
