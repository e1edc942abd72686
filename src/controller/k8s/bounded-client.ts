// API clients whose every call ends within a bound. client-node sets no timeout of its own, and an API server whose
// etcd is down holds a request for about a minute: a reconcile or a Lease renewal started then would block the work
// queue well past the recovery, and status would lag by that minute. A call cut short fails like any other and is
// retried by the queue's backoff. Watches are not made here: they are meant to stay open.
import { createConfiguration, ServerConfiguration, type Configuration, type KubeConfig, type RequestContext, type ResponseContext } from "@kubernetes/client-node";

/** A healthy API server answers the controller's small reads and writes in milliseconds; a call still open after 3 s is
 * waiting on something that is down, and the status goal is 5 s from recovery. */
export const API_CALL_TIMEOUT_MS = 3_000;

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
