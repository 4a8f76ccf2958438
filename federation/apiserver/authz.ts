// Authorization policy (pure): system:masters may do everything, everyone else only reads.

export type Verb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete';

export interface UserInfo {
  user: string;
  groups: string[];
}

export const READ_VERBS: readonly Verb[] = ['get', 'list', 'watch'];
export const ALL_VERBS: readonly Verb[] = ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'];

export function authorize(user: UserInfo, verb: Verb): boolean {
  if (user.groups.includes('system:masters')) return true;
  return READ_VERBS.includes(verb);
}

export function forbiddenMessage(user: UserInfo, verb: Verb, group: string, plural: string, namespace?: string, subresource?: string): string {
  const resource = subresource ? `${plural}/${subresource}` : plural;
  const where = namespace ? ` in the namespace "${namespace}"` : ' at the cluster scope';
  return `${plural} is forbidden: User "${user.user}" cannot ${verb} resource "${resource}" in API group "${group}"${where}`;
}
