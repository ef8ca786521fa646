// The API reference page (/api/docs): Swagger UI, shipped in the package (static/vendor), on
// the schema this server describes. A file of its own, so the page runs under the same
// Content-Security-Policy as the dashboard (no inline script).
"use strict";
(function () {
  var root = document.getElementById("swagger-ui");
  window.ui = window.SwaggerUIBundle({
    url: root.getAttribute("data-openapi-url"),
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null, // never send the schema to swagger.io's validator
    withCredentials: true,
  });
})();
