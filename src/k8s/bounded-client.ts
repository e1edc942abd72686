// API clients whose every call ends within a bound, for the agent and the controller alike. client-node sets no
// timeout of its own, and an API server whose etcd is down holds a request for about a minute: a reconcile, a Lease
// renewal or a password read started then would block its caller well past the recovery. A call cut short fails like
// any other and is retried by its caller. Watches are not made here: they are meant to stay open.
import {
  Observable,
  createConfiguration,
  ServerConfiguration,
  type Configuration,
  type ConfigurationOptions,
  type KubeConfig,
  type RequestContext,
  type ResponseContext,
} from "@kubernetes/client-node";

/** A healthy API server answers small reads and writes in milliseconds; a call still open after 3 s is waiting on
 * something that is down, and the status goal is 5 s from recovery. */
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

/** Call options that end the request when `signal` aborts, in place of the client's bound: for a caller that owns the
 * call's deadline. client-node takes a signal only through middleware, and appended middleware runs last. */
export function abortable(signal: AbortSignal, options: ConfigurationOptions): ConfigurationOptions {
  const middleware = {
    pre: (context: RequestContext): Observable<RequestContext> => {
      context.setSignal(signal);
      return new Observable(Promise.resolve(context));
    },
    post: (context: ResponseContext): Observable<ResponseContext> => new Observable(Promise.resolve(context)),
  };
  return { ...options, middleware: [...(options.middleware ?? []), middleware], middlewareMergeStrategy: "append" };
}
