// Writes the CRDs from the zod schemas in src/api/v1alpha1, to crds/ and to the chart's crds/ (helm installs that copy).
//   npx tsx scripts/generate-crd.ts           write every file
//   npx tsx scripts/generate-crd.ts --check   exit 1 when a committed file differs from what the schemas generate
import { readFile, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { CRD_FILE, POOL_CRD_FILE, renderCrdYaml, renderPoolCrdYaml } from "../src/api/v1alpha1/index.js";

const outputs = [
  { file: CRD_FILE, generated: renderCrdYaml() },
  { file: POOL_CRD_FILE, generated: renderPoolCrdYaml() },
];
const targets = outputs.flatMap(({ file, generated }) => [{ file, generated }, { file: `charts/ha-nginx/${file}`, generated }]);

for (const { file, generated } of targets) {
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
