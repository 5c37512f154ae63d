// The verification page's script: the language toggle, and the local PDF check. Nothing
// here talks to the network: the file is read and hashed in this browser (WebCrypto).
(function () {
  "use strict";
  var root = document.documentElement;
  var buttons = document.querySelectorAll(".lang");

  function setLanguage(lang) {
    var en = lang === "en";
    root.lang = en ? "en" : "zh-CN";
    buttons.forEach(function (b) {
      b.setAttribute("aria-pressed", String(b.dataset.lang === root.lang));
    });
    document.querySelectorAll("[data-zh][data-en]").forEach(function (el) {
      var text = en ? el.dataset.en : el.dataset.zh;
      if (el.tagName.toLowerCase() === "title") { document.title = text; }
      else { el.setAttribute("aria-label", text); }
    });
    // Kept in the fragment: never sent to the server, gone on the next scan.
    history.replaceState(null, "", en ? "#en" : location.pathname);
  }

  buttons.forEach(function (b) {
    b.addEventListener("click", function () { setLanguage(b.dataset.lang); });
  });
  document.querySelector(".langs").hidden = false;
  if (location.hash === "#en") { setLanguage("en"); }

  var check = document.getElementById("pdf-check");
  if (!check) { return; }
  var input = document.getElementById("pdf-file");
  var region = document.getElementById("pdf-result");
  var expected = document.getElementById("fingerprint").dataset.sha256.toLowerCase();

  function show(result) {
    region.dataset.result = result;
    region.replaceChildren(document.getElementById("result-" + result).content.cloneNode(true));
  }

  function hex(buffer) {
    return Array.from(new Uint8Array(buffer), function (b) {
      return b.toString(16).padStart(2, "0");
    }).join("");
  }

  check.hidden = false;
  if (!window.crypto || !window.crypto.subtle) {
    // WebCrypto needs a secure context (https, or http on this machine).
    input.disabled = true;
    show("unavailable");
    return;
  }
  input.addEventListener("change", function () {
    var file = input.files && input.files[0];
    if (!file) { region.replaceChildren(); region.dataset.result = ""; return; }
    show("working");
    file.arrayBuffer()
      .then(function (data) { return crypto.subtle.digest("SHA-256", data); })
      .then(function (digest) { show(hex(digest) === expected ? "match" : "mismatch"); })
      .catch(function () { show("error"); });
  });
})();
