// Starts Swagger UI on /schema/swagger from our own copy of its bundle (no inline script: the CSP forbids it).
const root = document.getElementById("swagger-ui");
window.ui = window.SwaggerUIBundle({
  url: root.dataset.specUrl,
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null, // never ask an outside validator about our schema
  presets: [window.SwaggerUIBundle.presets.apis],
});
