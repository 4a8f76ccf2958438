// Destination allowlist of the agent: default deny. Pure, so every rule is unit tested.
//
// Rules:
//   host:port        exact host name or IP literal (case-insensitive)
//   host:*           any port of that host
//   *.suffix:port    any name under suffix (not suffix itself)
//   CIDR:port        IP addresses in the block, e.g. 10.0.0.0/8:443 or [fd00::/8]:*
// A host name is allowed by name rules; if only CIDR rules could allow it, the agent resolves it
// and dials the checked address itself, so DNS cannot swap in another address afterwards.
import net from 'node:net';

export class PolicyRuleError extends Error {
  override readonly name = 'PolicyRuleError';
}

interface NameRule {
  kind: 'exact' | 'suffix';
  name: string;
  port: number | '*';
}

interface CidrRule {
  block: net.BlockList;
  port: number | '*';
}

function parsePort(text: string, rule: string): number | '*' {
  if (text === '*') return '*';
  if (!/^\d{1,5}$/.test(text) || Number(text) < 1 || Number(text) > 65535) throw new PolicyRuleError(`bad port in rule ${JSON.stringify(rule)}`);
  return Number(text);
}

function portMatches(rulePort: number | '*', port: number): boolean {
  return rulePort === '*' || rulePort === port;
}

export class DestinationPolicy {
  private readonly names: NameRule[] = [];
  private readonly cidrs: CidrRule[] = [];

  constructor(readonly rules: readonly string[]) {
    for (const rule of rules) this.addRule(rule);
  }

  /** True when a name rule allows host:port as given (no resolution needed). */
  allowsName(host: string, port: number): boolean {
    const name = host.toLowerCase().replace(/\.$/, '');
    for (const rule of this.names) {
      if (!portMatches(rule.port, port)) continue;
      if (rule.kind === 'exact' ? name === rule.name : name.endsWith(rule.name)) return true;
    }
    return net.isIP(name) !== 0 && this.allowsAddress(name, port);
  }

  /** True when a CIDR rule allows this resolved address. */
  allowsAddress(address: string, port: number): boolean {
    const family = net.isIP(address);
    if (family === 0) return false;
    const type = family === 6 ? 'ipv6' : 'ipv4';
    return this.cidrs.some((rule) => portMatches(rule.port, port) && rule.block.check(address, type));
  }

  /** Whether resolving a name could lead to an allowed address. */
  hasAddressRulesFor(port: number): boolean {
    return this.cidrs.some((rule) => portMatches(rule.port, port));
  }

  private addRule(rule: string): void {
    const colon = rule.lastIndexOf(':');
    if (colon <= 0) throw new PolicyRuleError(`rule ${JSON.stringify(rule)} must be HOST:PORT, *.SUFFIX:PORT or CIDR:PORT`);
    let host = rule.slice(0, colon);
    const port = parsePort(rule.slice(colon + 1), rule);
    if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
    if (host.includes('/')) {
      const parts = host.split('/');
      const [address, prefixText] = parts;
      const family = net.isIP(address!);
      const prefix = Number(prefixText);
      if (parts.length !== 2 || family === 0 || !/^\d{1,3}$/.test(prefixText!) || prefix > (family === 4 ? 32 : 128)) {
        throw new PolicyRuleError(`bad CIDR in rule ${JSON.stringify(rule)}`);
      }
      this.addAddressRule(address!, prefix, family, port);
      return;
    }
    const family = net.isIP(host);
    if (family !== 0) {
      // IP literals compare as addresses, so ::1 and 0:0:0:0:0:0:0:1 are the same rule.
      this.addAddressRule(host, family === 4 ? 32 : 128, family, port);
      return;
    }
    if (host.startsWith('*.')) {
      const suffix = host.slice(1).toLowerCase();
      if (!/^(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/.test(suffix)) throw new PolicyRuleError(`bad wildcard in rule ${JSON.stringify(rule)}`);
      this.names.push({ kind: 'suffix', name: suffix, port });
      return;
    }
    if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/i.test(host)) {
      throw new PolicyRuleError(`bad host in rule ${JSON.stringify(rule)}`);
    }
    this.names.push({ kind: 'exact', name: host.toLowerCase(), port });
  }

  private addAddressRule(address: string, prefix: number, family: number, port: number | '*'): void {
    const block = new net.BlockList();
    block.addSubnet(address, prefix, family === 6 ? 'ipv6' : 'ipv4');
    this.cidrs.push({ block, port });
  }
}
