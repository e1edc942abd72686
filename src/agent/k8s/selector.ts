import type { LabelSelector } from "../../api/v1alpha1/index.js";

/** A metav1.LabelSelector in the `key=value,key in (a,b)` form the API server takes as a labelSelector query. */
export function formatLabelSelector(selector: LabelSelector): string {
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
