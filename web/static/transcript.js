// The call page: the transcript follows the recording as it plays (the word being said is
// highlighted), and a click on a word, a turn's time or a tag plays the call from there.
(function () {
  "use strict";
  function ready() {
    var audio = document.querySelector("#recording audio");
    var panel = document.getElementById("transcript");
    if (!audio || !panel) return;
    var words = Array.prototype.slice.call(panel.querySelectorAll(".word"));
    var spans = words.map(function (w) {
      return { el: w, start: parseFloat(w.dataset.start), end: parseFloat(w.dataset.end) };
    });
    var current = [];
    audio.addEventListener("timeupdate", function () {
      var t = audio.currentTime;
      current.forEach(function (s) { s.el.classList.remove("playing"); });
      current = spans.filter(function (s) { return s.start <= t && t < s.end; });
      current.forEach(function (s) { s.el.classList.add("playing"); });
    });
    // /calls/ID#t=12.5 (from a search): the player waits at that moment
    var wanted = /^#t=(\d{1,6}(?:\.\d{1,3})?)$/.exec(window.location.hash);
    if (wanted) {
      var seek = function () { audio.currentTime = parseFloat(wanted[1]); };
      if (audio.readyState >= 1) seek(); else audio.addEventListener("loadedmetadata", seek, { once: true });
      panel.scrollIntoView();
    }
    document.addEventListener("click", function (event) {
      var target = event.target.closest("#transcript [data-start], #analysis [data-start]");
      if (!target) return;
      audio.currentTime = parseFloat(target.dataset.start);
      var playing = audio.play();
      if (playing && playing.catch) playing.catch(function () {});
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", ready);
  } else {
    ready();
  }
})();
