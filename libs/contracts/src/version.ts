/** The product version: the CLI's --version, `created by` in torrents, the peer id and client name. */
export const SWARMSHIP_VERSION = '0.1.0';
