// Writes crds/ha-nginx.io_highavailabilityvips.yaml from the zod schema in src/api/v1alpha1.
//   npx tsx scripts/generate-crd.ts           write the file
//   npx tsx scripts/generate-crd.ts --check   exit 1 when the committed file differs from what the schema generates
import { readFile, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { CRD_FILE, renderCrdYaml } from "../src/api/v1alpha1/index.js";

const target = fileURLToPath(new URL(`../${CRD_FILE}`, import.meta.url));
const generated = renderCrdYaml();

if (process.argv.includes("--check")) {
  const committed = await readFile(target, "utf8").catch(() => "");
  if (committed !== generated) {
    console.error(`${CRD_FILE} is out of date with src/api/v1alpha1; run: npx tsx scripts/generate-crd.ts`);
    process.exit(1);
  }
  console.log(`${CRD_FILE} is up to date`);
} else {
  await writeFile(target, generated);
  console.log(`wrote ${CRD_FILE}`);
}
