// Mention autocomplete for textarea[data-mentions]: type "@" and a few letters, pick a person or
// a team, and the token @[Label](user:ID) goes into the text. Loaded as a file (the CSP forbids
// inline script); no eval, and server text only ever goes into textContent.
// Listeners sit on the document, so panels that htmx swaps in work without setup.
(function () {
  "use strict";
  var DELAY = 150;
  var MAX_QUERY = 40;
  var URL = "/api/collaborative/mentionables?q=";
  var serial = 0;
  var open = null; // {textarea, list, items, active, start}
  var timer = null;
  var asked = 0;

  // The "@query" just before the caret: "@" at the start or after a space, then 1-40
  // characters without a line break or the token's brackets.
  function mentionAt(textarea) {
    var caret = textarea.selectionStart;
    if (caret !== textarea.selectionEnd) { return null; }
    var before = textarea.value.slice(0, caret);
    var at = before.lastIndexOf("@");
    if (at < 0 || caret - at - 1 > MAX_QUERY) { return null; }
    if (at > 0 && !/\s/.test(before.charAt(at - 1))) { return null; }
    var query = before.slice(at + 1);
    if (!query.trim() || /[\n\[\]()@]/.test(query)) { return null; }
    return { start: at, query: query };
  }

  function close() {
    if (!open) { return; }
    open.textarea.setAttribute("aria-expanded", "false");
    open.textarea.removeAttribute("aria-activedescendant");
    if (open.list.parentNode) { open.list.parentNode.removeChild(open.list); }
    open = null;
  }

  function highlight(index) {
    if (!open || !open.items.length) { return; }
    var count = open.items.length;
    open.active = (index + count) % count;
    var options = open.list.children;
    for (var i = 0; i < options.length; i++) {
      options[i].setAttribute("aria-selected", i === open.active ? "true" : "false");
    }
    var chosen = options[open.active];
    open.textarea.setAttribute("aria-activedescendant", chosen.id);
    if (chosen.scrollIntoView) { chosen.scrollIntoView({ block: "nearest" }); }
  }

  function choose(index) {
    if (!open || !open.items[index]) { return; }
    var textarea = open.textarea;
    var token = open.items[index].token + " ";
    var caret = textarea.selectionStart;
    var value = textarea.value;
    textarea.value = value.slice(0, open.start) + token + value.slice(caret);
    var after = open.start + token.length;
    close();
    textarea.focus();
    textarea.setSelectionRange(after, after);
    textarea.dispatchEvent(new Event("input", { bubbles: true }));
  }

  function listFor(textarea) {
    if (!textarea.id) { textarea.id = "mention-input-" + (++serial); }
    var list = document.createElement("ul");
    list.id = textarea.id + "-mentions";
    list.className = "mention-list";
    list.setAttribute("role", "listbox");
    var label = textarea.labels && textarea.labels[0];
    if (label) { list.setAttribute("aria-label", label.textContent.trim()); }
    textarea.setAttribute("aria-controls", list.id);
    textarea.setAttribute("aria-autocomplete", "list");
    return list;
  }

  function show(textarea, start, items) {
    close();
    if (!items.length) { return; }
    var list = listFor(textarea);
    items.forEach(function (item, i) {
      var option = document.createElement("li");
      option.id = list.id + "-" + i;
      option.setAttribute("role", "option");
      option.setAttribute("aria-selected", "false");
      option.dir = "auto"; // Persian and Vietnamese names side by side
      option.className = "mention-" + item.type;
      option.textContent = (item.type === "team" ? "👥 " : "@") + item.label;
      // mousedown, not click: the textarea keeps its focus and caret
      option.addEventListener("mousedown", function (event) {
        event.preventDefault();
        choose(i);
      });
      list.appendChild(option);
    });
    textarea.insertAdjacentElement("afterend", list);
    textarea.setAttribute("aria-expanded", "true");
    open = { textarea: textarea, list: list, items: items, active: -1, start: start };
    highlight(0);
  }

  function lookUp(textarea) {
    var found = mentionAt(textarea);
    if (!found) { close(); return; }
    var ticket = ++asked;
    fetch(URL + encodeURIComponent(found.query), {
      credentials: "same-origin",
      headers: { Accept: "application/json" }
    })
      .then(function (response) { return response.ok ? response.json() : []; })
      .then(function (items) {
        // only the latest question counts, and only if the caret is still in the mention
        if (ticket !== asked || document.activeElement !== textarea) { return; }
        var still = mentionAt(textarea);
        if (!still || still.start !== found.start) { close(); return; }
        show(textarea, found.start, Array.isArray(items) ? items : []);
      })
      .catch(function () { close(); });
  }

  document.addEventListener("input", function (event) {
    var textarea = event.target;
    if (!textarea.matches || !textarea.matches("textarea[data-mentions]")) { return; }
    window.clearTimeout(timer);
    timer = window.setTimeout(function () { lookUp(textarea); }, DELAY);
  });

  document.addEventListener("keydown", function (event) {
    if (!open || event.target !== open.textarea) { return; }
    if (event.key === "ArrowDown") {
      event.preventDefault();
      highlight(open.active + 1);
    } else if (event.key === "ArrowUp") {
      event.preventDefault();
      highlight(open.active - 1);
    } else if ((event.key === "Enter" || event.key === "Tab") && open.active >= 0) {
      event.preventDefault();
      choose(open.active);
    } else if (event.key === "Escape") {
      event.preventDefault();
      close();
    }
  });

  document.addEventListener("focusout", function (event) {
    if (open && event.target === open.textarea) { close(); }
  });

  // htmx is replacing the panel the list belongs to (other panels of the page, still loading
  // or refreshing themselves, leave it open)
  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail && event.detail.target;
    if (open && target && target.contains(open.textarea)) { close(); }
  });
})();
