/** The part of npm's bittorrent-tracker server the tracker benchmark uses; the package ships no types. */
declare module 'bittorrent-tracker/server' {
  import { EventEmitter } from 'node:events';
  import type { Server as HttpServer } from 'node:http';

  interface ServerOptions {
    /** Milliseconds between announces the tracker asks for. */
    interval?: number;
    http?: boolean;
    udp?: boolean;
    ws?: boolean;
    stats?: boolean;
    trustProxy?: boolean;
  }

  export default class Server extends EventEmitter {
    constructor(opts?: ServerOptions);
    http: HttpServer | null;
    listen(port: number, hostname: string, onlistening?: () => void): void;
    close(cb?: () => void): void;
  }
}
