/* Call tracking snippet: shows this visitor a tracking number in place of the site's own.
   <script src="https://APPLIANCE/t/v1/snippet.js" data-site="KEY" async></script>
   Optional: data-domain=".example.com" (one visitor across subdomains),
   data-consent="required" (nothing happens until the page calls CallTracking.consent()).
   Consent is only ever claimed after CallTracking.consent() (or window.CallTrackingConsent =
   true set before the snippet loads): a site that needs it gets no tracking otherwise.
   It sets one first-party cookie (_ctv, a random visitor id), talks to nothing but the
   appliance it came from, and does nothing at all under Do Not Track or Global Privacy Control. */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.CallTracking) return;
  var nav = navigator;
  window.CallTracking = { consent: function () { consented = true; start(); } };
  if (nav.doNotTrack === "1" || nav.globalPrivacyControl) return;
  var base = script.src.replace(/\/t\/v1\/snippet\.js.*$/, "/t/v1/");
  var site = script.getAttribute("data-site");
  var domain = script.getAttribute("data-domain");
  var waits = script.getAttribute("data-consent") === "required";
  var consented = window.CallTrackingConsent === true;  /* set before the snippet loads */
  var started = false, shown = null, theirs = [], forms = [], visitor = null, timer = null;

  function cookie() {
    var found = document.cookie.match(/(?:^|;\s*)_ctv=([0-9a-f]{32})/);
    if (found) return found[1];
    var bytes = new Uint8Array(16), id = "";
    crypto.getRandomValues(bytes);
    for (var i = 0; i < 16; i++) id += (bytes[i] + 256).toString(16).slice(1);
    document.cookie = "_ctv=" + id + ";path=/;max-age=31536000;SameSite=Lax" +
      (domain ? ";domain=" + domain : "") + (location.protocol === "https:" ? ";Secure" : "");
    return id;
  }

  function post(path, body, then) {
    body.site = site;
    body.visitor = visitor;
    body.url = location.href.split("#")[0];
    body.consent = consented;
    fetch(base + path, { method: "POST", body: JSON.stringify(body), credentials: "omit",
      keepalive: true, referrerPolicy: "no-referrer" })
      .then(function (r) { return r.ok && then ? r.json() : null; })
      .then(function (answer) { if (answer && then) then(answer); })
      .catch(function () {});
  }

  /* a written number matches one of `numbers` (E.164) when its digits, leading zeros (a trunk
     prefix) aside, are the tail of one; its digits are then rewritten from the right, so the
     page keeps its own format: (555) 123-4567, 555.123.4567, +1 555-123-4567 */
  function digits(text) { return text.replace(/\D/g, ""); }
  function matches(written, numbers) {
    var d = digits(written).replace(/^0+/, "");
    for (var i = 0; i < numbers.length; i++)
      if (d.length >= 7 && digits(numbers[i]).slice(-d.length) === d) return d.length;
    return 0;
  }
  function rewrite(written, count, number) {
    var out = written.split(""), next = digits(number);
    for (var i = out.length - 1, j = next.length; i >= 0 && count > 0; i--)
      if (/\d/.test(out[i])) { out[i] = next.charAt(--j) || out[i]; count--; }
    return out.join("");
  }
  var WRITTEN = /\+?\(?\d[\d\s().\u00a0-]{5,}\d/g;
  function swap(numbers, number) {
    var walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT), node, nodes = [];
    while ((node = walk.nextNode()))
      if (!/^(SCRIPT|STYLE|TEXTAREA|NOSCRIPT)$/.test(node.parentNode.nodeName)) nodes.push(node);
    nodes.forEach(function (text) {
      var changed = text.data.replace(WRITTEN, function (written) {
        var count = matches(written, numbers);
        return count ? rewrite(written, count, number) : written;
      });
      if (changed !== text.data) text.data = changed;
    });
    var links = document.querySelectorAll('a[href^="tel:"]');
    for (var i = 0; i < links.length; i++)
      if (matches(links[i].getAttribute("href").slice(4), numbers))
        links[i].setAttribute("href", "tel:" + number);
  }

  function show(answer) {
    if (!answer.tracking) return;
    forms = answer.forms || [];
    if (!answer.number && shown) {  /* the number went to another visitor: the site's own */
      swap([shown], answer.replace[0]);
      shown = null;
    } else if (answer.number && answer.number !== shown) {
      theirs = answer.replace.concat(shown ? [shown] : []);
      shown = answer.number;
      swap(theirs, shown);
    }
    if (!timer) timer = setInterval(function () {
      if (document.visibilityState === "visible") post("number", { beat: true }, show);
    }, (answer.heartbeat || 60) * 1000);
  }

  /* forms the site asked to track: sent as a lead, never password, hidden or card fields */
  function submitted(event) {
    var form = event.target, name = form.getAttribute("name") || form.id;
    if (forms.indexOf(name) < 0) return;
    var fields = {};
    for (var i = 0; i < form.elements.length; i++) {
      var el = form.elements[i], type = (el.type || "").toLowerCase();
      if (!el.name || /password|hidden|file|submit|button|reset/.test(type)) continue;
      if (/^cc-/.test(el.autocomplete || "") || /pass|card|cvv|cvc|csc|iban|ssn/i.test(el.name)) continue;
      if ((type === "checkbox" || type === "radio") && !el.checked) continue;
      fields[el.name] = String(el.value).slice(0, 1000);
    }
    post("lead", { form: name, fields: fields });
  }

  function start() {
    if (started || (waits && !consented) || !site) return;
    started = true;
    visitor = cookie();
    document.addEventListener("submit", submitted, true);
    var ask = function () { post("number", { referrer: document.referrer }, show); };
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", ask);
    else ask();
  }
  start();
})();
