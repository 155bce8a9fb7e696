import { join } from 'node:path';
import { ClientProxyFactory, Transport, type ClientProxy } from '@nestjs/microservices';
import { startControllerProcess, tempDataDir, type ControllerUnderTest } from './controller-process.js';

export interface ControllerWithChannel {
  ctl: ControllerUnderTest;
  /** Connected to the controller's agent channel, as an agent is. */
  client: ClientProxy;
  /** Closes the client, stops the controller and removes its data dir. */
  stop(): Promise<void>;
}

/**
 * A `swarmship controller` on a fresh data dir (`extraArgs` added to its command line)
 * and a client of its agent channel. What was started is stopped again if a later step fails.
 */
export async function startControllerWithChannel(extraArgs: string[] = []): Promise<ControllerWithChannel> {
  const temp = await tempDataDir();
  let ctl: ControllerUnderTest | undefined;
  let client: ClientProxy | undefined;
  const stop = async () => {
    await client?.close();
    await ctl?.stop();
    await temp.remove();
  };
  try {
    ctl = await startControllerProcess(join(temp.dir, 'data'), extraArgs);
    client = ClientProxyFactory.create({ transport: Transport.TCP, options: { host: ctl.channel.host, port: ctl.channel.port } }) as ClientProxy;
    await client.connect();
    return { ctl, client, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
