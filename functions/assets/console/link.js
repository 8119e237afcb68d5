// The one-time sign-in link, `/console/link#<token>`: the token is in the
// URL's fragment, which the browser never sends to a server (nor in a
// Referer). This script takes it, removes it from the address bar and the
// history, and posts it once to /console/link; the server answers with a
// session or with the refusal page.
(function () {
  "use strict";
  var token = window.location.hash.replace(/^#/, "");
  if (window.history && window.history.replaceState) {
    window.history.replaceState(null, "", window.location.pathname + window.location.search);
  }
  var form = document.getElementById("link-form");
  if (!form) {
    return;
  }
  if (!token) {
    var missing = document.getElementById("link-missing");
    if (missing) {
      missing.hidden = false;
    }
    return;
  }
  form.elements.namedItem("token").value = token;
  form.submit();
})();
