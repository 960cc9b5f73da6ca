// Shopfront's GraphiQL page: the editor talks to the endpoint that served this page.
(function () {
  "use strict";
  var endpoint = window.location.origin + window.location.pathname;
  var query = [
    "# Shopfront: put your API key in the Headers tab below, e.g.",
    '#   {"Authorization": "Bearer sf_storefront_..."}',
    "# (`make run` prints the demo keys and writes them to .shopfront/demo-keys.env).",
    "",
    "query FirstProducts {",
    "  products(first: 5) {",
    "    nodes { id title brand price { amount currency } inStock }",
    "  }",
    "}",
    "",
  ].join("\n");
  var root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(
    React.createElement(GraphiQL, {
      fetcher: GraphiQL.createFetcher({ url: endpoint }),
      defaultQuery: query,
      defaultHeaders: '{\n  "Authorization": "Bearer "\n}',
      shouldPersistHeaders: true,
      isHeadersEditorEnabled: true,
      defaultEditorToolsVisibility: true,
    })
  );
})();
