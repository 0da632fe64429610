import { useQuery } from '@tanstack/react-query';
import { api, data } from './client';
import { keys } from './keys';

/** The signed-in caller and what its roles allow (GET /whoami): pages show only what it permits. */
export function useWhoAmI() {
  return useQuery({ queryKey: keys.whoami(), queryFn: () => data(api.GET('/whoami')), staleTime: 5 * 60_000 });
}

/** Whether the caller holds a permission (the API's policy, libs/domain access/query-access.ts). */
export function usePermission(permission: string): boolean {
  const whoami = useWhoAmI();
  return Boolean(whoami.data?.permissions[permission]);
}
