// The controller's client-node API clients, whose every call ends within the bound the agent's client also keeps.
// client-node sets no timeout of its own, and an API server whose etcd is down holds a request for about a minute: a
// reconcile or a Lease renewal started then would block its caller well past the recovery. A call cut short fails like
// any other and is retried by its caller. Watches are not made here: they are meant to stay open.
import {
  createConfiguration,
  ServerConfiguration,
  type Configuration,
  type KubeConfig,
  type RequestContext,
  type ResponseContext,
} from "@kubernetes/client-node";
import { API_CALL_TIMEOUT_MS } from "./http-client.js";

export function makeBoundedApiClient<T>(kubeConfig: KubeConfig, apiClass: new (configuration: Configuration) => T, timeoutMs = API_CALL_TIMEOUT_MS): T {
  const cluster = kubeConfig.getCurrentCluster();
  if (cluster === null) throw new Error("the kubeconfig names no current cluster");
  return new apiClass(
    createConfiguration({
      baseServer: new ServerConfiguration(cluster.server, {}),
      authMethods: { default: kubeConfig },
      promiseMiddleware: [
        {
          pre: async (context: RequestContext) => {
            context.setSignal(AbortSignal.timeout(timeoutMs));
            return context;
          },
          post: async (context: ResponseContext) => context,
        },
      ],
    }),
  );
}
