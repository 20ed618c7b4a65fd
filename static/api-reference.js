// The dashboard's API reference: renders /v1/openapi.json with the vendored Swagger UI.
// "Try it out" calls the API with the signed-in session (same origin) or a pasted pb_ token.
"use strict";
window.addEventListener("DOMContentLoaded", function () {
  var el = document.getElementById("api-reference");
  if (!el || typeof window.SwaggerUIBundle !== "function") return;
  window.SwaggerUIBundle({
    url: el.getAttribute("data-spec"),
    domNode: el,
    deepLinking: true,
    docExpansion: "list",
    defaultModelsExpandDepth: 0,
    displayOperationId: false,
    tryItOutEnabled: false,
    persistAuthorization: false,
  });
});
