// Checks that turn the usual first-run failures into one sentence that says what to do.
import { AuthorizationV1Api, CustomObjectsApi, KubeConfig } from "@kubernetes/client-node";
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { HAVIP_GROUP, HAVIP_PLURAL, HAVIP_VERSION, POOL_KIND, POOL_PLURAL } from "../api/v1alpha1/index.js";
import { apiStatusCode, describeApiError } from "../k8s/errors.js";
import { LEASE_NAME } from "./leader.js";
import { StartupError } from "../startup-error.js";

export class ControllerStartupError extends StartupError {}

const SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token";

export function loadKubeConfig(): KubeConfig {
  const hasSource =
    (process.env.KUBECONFIG ?? "") !== "" || existsSync(join(homedir(), ".kube", "config")) || existsSync(SERVICE_ACCOUNT_TOKEN);
  if (!hasSource) {
    throw new ControllerStartupError("no kubeconfig: set KUBECONFIG, create ~/.kube/config, or run in a pod with a service account token");
  }
  const kubeConfig = new KubeConfig();
  try {
    kubeConfig.loadFromDefault();
  } catch (error) {
    throw new ControllerStartupError(`cannot read the kubeconfig: ${describeApiError(error)}`);
  }
  if (kubeConfig.getCurrentCluster() === null) throw new ControllerStartupError("the kubeconfig has no current cluster; set current-context");
  return kubeConfig;
}

/** A verb on a resource the controller needs; the same list as charts/ha-nginx/templates/rbac-controller.yaml. */
interface Permission {
  readonly group: string;
  readonly resource: string;
  readonly subresource?: string;
  readonly verb: string;
  /** For rules restricted by resourceNames. */
  readonly name?: string;
  readonly namespaced: "cluster" | "controller";
}

const REQUIRED: readonly Permission[] = [
  ...["get", "list", "watch", "patch"].map((verb) => ({ group: HAVIP_GROUP, resource: HAVIP_PLURAL, verb, namespaced: "cluster" as const })),
  { group: HAVIP_GROUP, resource: HAVIP_PLURAL, subresource: "status", verb: "patch", namespaced: "cluster" },
  ...["list", "watch"].map((verb) => ({ group: HAVIP_GROUP, resource: POOL_PLURAL, verb, namespaced: "cluster" as const })),
  ...["list", "watch", "create", "patch", "delete"].map((verb) => ({ group: "apps", resource: "daemonsets", verb, namespaced: "controller" as const })),
  ...["list", "watch", "delete"].map((verb) => ({ group: "", resource: "pods", verb, namespaced: "controller" as const })),
  ...["list", "watch"].map((verb) => ({ group: "", resource: "nodes", verb, namespaced: "cluster" as const })),
  ...["create", "patch", "delete"].flatMap((verb) => [
    { group: "rbac.authorization.k8s.io", resource: "rolebindings", verb, namespaced: "cluster" as const },
    { group: "rbac.authorization.k8s.io", resource: "roles", verb, namespaced: "cluster" as const },
  ]),
  // Not read by the controller: the API server lets it grant an agent get on a Secret only if it holds that itself.
  { group: "", resource: "secrets", verb: "get", namespaced: "cluster" },
  { group: "events.k8s.io", resource: "events", verb: "create", namespaced: "cluster" },
];

const LEASE_PERMISSIONS: readonly Permission[] = ["get", "create", "patch"].map((verb) => ({
  group: "coordination.k8s.io",
  resource: "leases",
  verb,
  ...(verb === "create" ? {} : { name: LEASE_NAME }),
  namespaced: "controller" as const,
}));

function describePermission(permission: Permission, namespace: string): string {
  const resource = `${permission.resource}${permission.subresource === undefined ? "" : `/${permission.subresource}`}`;
  const group = permission.group === "" ? "core" : permission.group;
  const scope = permission.namespaced === "controller" ? ` in namespace ${namespace}` : " cluster-wide";
  const named = permission.name === undefined ? "" : ` named ${permission.name}`;
  return `${permission.verb} ${resource}${named} (${group})${scope}`;
}

export async function checkCluster(kubeConfig: KubeConfig, namespace: string, isLeaderElect: boolean): Promise<void> {
  const server = kubeConfig.getCurrentCluster()?.server ?? "?";
  try {
    await kubeConfig.makeApiClient(CustomObjectsApi).listClusterCustomObject({ group: HAVIP_GROUP, version: HAVIP_VERSION, plural: HAVIP_PLURAL, limit: 1 });
  } catch (error) {
    const code = apiStatusCode(error);
    if (code === 404) {
      throw new ControllerStartupError(`the HighAvailabilityVIP CRD is not installed on ${server}; install the CRD: kubectl apply -f crds/`);
    }
    if (code === 401) throw new ControllerStartupError(`the API server at ${server} rejected the credentials (401); refresh the kubeconfig's token or certificate`);
    if (code === undefined) throw new ControllerStartupError(`cannot reach the API server at ${server}: ${describeApiError(error)}`);
    if (code !== 403) throw new ControllerStartupError(`listing ${HAVIP_PLURAL} failed: ${describeApiError(error)}`);
  }
  // Without the pool CRD the pool watch would never sync, and the controller would sit unready with no word of why.
  try {
    await kubeConfig.makeApiClient(CustomObjectsApi).listClusterCustomObject({ group: HAVIP_GROUP, version: HAVIP_VERSION, plural: POOL_PLURAL, limit: 1 });
  } catch (error) {
    const code = apiStatusCode(error);
    if (code === 404) {
      throw new ControllerStartupError(`the ${POOL_KIND} CRD is not installed on ${server}; install the CRDs: kubectl apply -f crds/`);
    }
    if (code !== 403) throw new ControllerStartupError(`listing ${POOL_PLURAL} failed: ${describeApiError(error)}`);
  }
  const authorization = kubeConfig.makeApiClient(AuthorizationV1Api);
  const wanted = isLeaderElect ? [...REQUIRED, ...LEASE_PERMISSIONS] : REQUIRED;
  const denied: string[] = [];
  for (const permission of wanted) {
    const review = await authorization.createSelfSubjectAccessReview({
      body: {
        spec: {
          resourceAttributes: {
            group: permission.group,
            resource: permission.resource,
            verb: permission.verb,
            ...(permission.subresource === undefined ? {} : { subresource: permission.subresource }),
            ...(permission.name === undefined ? {} : { name: permission.name }),
            ...(permission.namespaced === "controller" ? { namespace } : {}),
          },
        },
      },
    });
    if (review.status?.allowed !== true) denied.push(describePermission(permission, namespace));
  }
  if (denied.length > 0) {
    throw new ControllerStartupError(`RBAC denies the controller: ${denied.join("; ")}; apply charts/ha-nginx/templates/rbac-controller.yaml and bind it to this identity`);
  }
}
