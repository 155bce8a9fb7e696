declare module 'bencode' {
  type BencodeValue = number | Uint8Array | string | BencodeValue[] | { [key: string]: BencodeValue };
  const bencode: {
    encode(value: unknown): Uint8Array;
    decode(data: Uint8Array, start?: number, end?: number, encoding?: string): unknown;
    byteLength(value: unknown): number;
    encodingLength(value: unknown): number;
  };
  export default bencode;
  export type { BencodeValue };
}
