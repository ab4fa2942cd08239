/**
 * GET /docs: the API reference, rendered by Swagger UI from GET /openapi.json. Swagger UI's files are served
 * by this worker as static assets (public/docs/assets/, copied from the swagger-ui-dist package at install), so
 * the page needs no CDN: it works offline, locally, and under a strict network policy.
 */
export const DOCS_PAGE = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Segment Export API reference</title>
  <link rel="icon" href="/docs/assets/favicon-32x32.png">
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
  <div id="reference"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#reference", deepLinking: true, tryItOutEnabled: false });
  </script>
</body>
</html>
`;
