import { ClientProxyFactory, Transport, type ClientProxy } from '@nestjs/microservices';
import { firstValueFrom, timeout } from 'rxjs';
import { AgentPatterns, type AgentProgressReport, type AgentSyncRequest, type AgentSyncResponse } from '../../../libs/contracts/src/agent-channel.js';
import { ChannelRefusedError, type ControllerChannel } from '../../../libs/agent-core/src/release-agent.js';
import { ControllerAnswerSocket } from '../../controller/src/channel-socket.js';

const PROGRESS_TIMEOUT_MS = 5000;

/**
 * The agent channel over the TCP transport of @nestjs/microservices, framed as the
 * controller frames it: an answer declared over the limit, or a bad length header, drops
 * the connection before it is buffered (the transport alone would hold 128 M characters
 * from whatever answers on the controller's address); the next call reconnects.
 */
export class TcpControllerChannel implements ControllerChannel {
  private readonly client: ClientProxy;

  constructor(address: { host: string; port: number }) {
    this.client = ClientProxyFactory.create({ transport: Transport.TCP, options: { host: address.host, port: address.port, socketClass: ControllerAnswerSocket } });
  }

  async sync(request: AgentSyncRequest, timeoutMs: number): Promise<AgentSyncResponse> {
    return this.call<AgentSyncResponse>(AgentPatterns.sync, request, timeoutMs);
  }

  async progress(report: AgentProgressReport): Promise<void> {
    await this.call(AgentPatterns.progress, report, PROGRESS_TIMEOUT_MS);
  }

  async close(): Promise<void> {
    await this.client.close();
  }

  /** One request; a refusal (returned or thrown as an RpcException) becomes ChannelRefusedError. */
  private async call<T>(pattern: string, data: unknown, timeoutMs: number): Promise<T> {
    let answer: unknown;
    try {
      answer = await firstValueFrom(this.client.send<unknown>(pattern, data).pipe(timeout(timeoutMs)));
    } catch (err) {
      throw asChannelError(err);
    }
    if (isRefusal(answer)) throw new ChannelRefusedError(answer.error, answer.message);
    return answer as T;
  }
}

function isRefusal(v: unknown): v is { error: string; message: string } {
  return typeof v === 'object' && v !== null && typeof (v as { error?: unknown }).error === 'string' && typeof (v as { message?: unknown }).message === 'string';
}

function asChannelError(err: unknown): Error {
  if (isRefusal(err)) return new ChannelRefusedError(err.error, err.message);
  if (err instanceof Error) {
    if (err.name === 'TimeoutError') return new Error('no answer in time');
    const code = (err as NodeJS.ErrnoException).code;
    return code ? new Error(code) : err;
  }
  if (typeof err === 'object' && err !== null && 'message' in err) return new Error(String((err as { message: unknown }).message));
  return new Error(String(err));
}
