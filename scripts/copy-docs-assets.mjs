// Copies Swagger UI's prebuilt files (the swagger-ui-dist package) into public/docs/assets/, which the API
// worker serves as static assets for GET /docs. Run by npm's postinstall, so `npm ci` leaves them in place
// for `npm run dev`, the tests and `npm run deploy` alike. Plain Node: it runs before anything is built.
import { copyFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const source = dirname(createRequire(import.meta.url).resolve("swagger-ui-dist/package.json"));
const target = join(root, "public", "docs", "assets");
mkdirSync(target, { recursive: true });
for (const file of ["swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png", "LICENSE"]) {
  copyFileSync(join(source, file), join(target, file));
}
