// Writes the CRD from the zod schema in src/api/v1alpha1, to crds/ and to the chart's crds/ (helm installs that copy).
//   npx tsx scripts/generate-crd.ts           write both files
//   npx tsx scripts/generate-crd.ts --check   exit 1 when a committed file differs from what the schema generates
import { readFile, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { CRD_FILE, renderCrdYaml } from "../src/api/v1alpha1/index.js";

const targets = [CRD_FILE, `charts/ha-nginx/${CRD_FILE}`];
const generated = renderCrdYaml();

for (const file of targets) {
  const target = fileURLToPath(new URL(`../${file}`, import.meta.url));
  if (process.argv.includes("--check")) {
    const committed = await readFile(target, "utf8").catch(() => "");
    if (committed !== generated) {
      console.error(`${file} is out of date with src/api/v1alpha1; run: npm run generate:crd`);
      process.exit(1);
    }
    console.log(`${file} is up to date`);
  } else {
    await writeFile(target, generated);
    console.log(`wrote ${file}`);
  }
}
