// metav1.LabelSelector, as spec.nodes.selector and spec.healthCheck.nginxPodSelector use it: the controller matches
// nodes with it, the agent turns it into a labelSelector query.
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

/** The `key=value,key in (a,b)` form the API server accepts as a labelSelector query. */
export function formatSelector(selector: LabelSelector): string {
  const pairs = Object.entries(selector.matchLabels ?? {}).map(([key, value]) => `${key}=${value}`);
  const expressions = (selector.matchExpressions ?? []).map((expression) => {
    const values = (expression.values ?? []).join(",");
    switch (expression.operator) {
      case "In":
        return `${expression.key} in (${values})`;
      case "NotIn":
        return `${expression.key} notin (${values})`;
      case "Exists":
        return expression.key;
      case "DoesNotExist":
        return `!${expression.key}`;
    }
  });
  return [...pairs, ...expressions].join(",");
}
