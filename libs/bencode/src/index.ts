export { decodeStrict, dictionarySpans, type Span } from './decode.js';
export { encode } from './encode.js';
export { BencodeError, formatPath, MAX_DEPTH, type BencodeDict, type BencodeErrorCode, type BencodePath, type BencodeValue, type Encodable } from './value.js';
