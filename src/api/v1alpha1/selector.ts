// metav1.LabelSelector, as spec.nodes.selector and spec.healthCheck.nginxPodSelector use it: nodes and the agent's
// nginx pods are matched with it in memory, from the watches' caches.
import type { LabelSelector } from "./schema.js";

/** metav1.LabelSelector semantics: every matchLabels pair and every expression must hold; an empty selector matches all. */
export function matchesSelector(selector: LabelSelector | undefined, labels: Readonly<Record<string, string>>): boolean {
  if (selector === undefined) return true;
  const pairsHold = Object.entries(selector.matchLabels ?? {}).every(([key, value]) => labels[key] === value);
  if (!pairsHold) return false;
  return (selector.matchExpressions ?? []).every((expression) => {
    const value = labels[expression.key];
    const values = expression.values ?? [];
    switch (expression.operator) {
      case "In":
        return value !== undefined && values.includes(value);
      case "NotIn":
        return value === undefined || !values.includes(value);
      case "Exists":
        return value !== undefined;
      case "DoesNotExist":
        return value === undefined;
    }
  });
}
