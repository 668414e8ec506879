// Every page: times in the viewer's own time zone, photo previews before upload, and the
// auction page's gallery. Without this script the pages show UTC and say so.
(function () {
  "use strict";

  var zone = (Intl.DateTimeFormat().resolvedOptions().timeZone) || "your time zone";
  var dateTime = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
    second: "2-digit",
  });

  // <time datetime="…"> (ISO 8601 with a zone) shows the moment in local time.
  function localizeTimes(root) {
    var times = (root || document).querySelectorAll("time[datetime]");
    for (var i = 0; i < times.length; i++) {
      var ms = Date.parse(times[i].getAttribute("datetime"));
      if (isNaN(ms)) continue;
      times[i].textContent = dateTime.format(new Date(ms));
      times[i].title = new Date(ms).toISOString().replace(".000Z", "Z") + " (UTC)";
      times[i].setAttribute("data-local", "true");
    }
  }
  window.localizeTimes = localizeTimes;

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function localInputValue(date) {
    return date.getFullYear() + "-" + pad(date.getMonth() + 1) + "-" + pad(date.getDate()) +
      "T" + pad(date.getHours()) + ":" + pad(date.getMinutes());
  }

  // Forms draw datetime-local fields in UTC: show them in local time, and send UTC back.
  function localizeInputs() {
    var inputs = document.querySelectorAll('input[type="datetime-local"]');
    if (!inputs.length) return;
    for (var i = 0; i < inputs.length; i++) {
      if (inputs[i].value) inputs[i].value = localInputValue(new Date(inputs[i].value + ":00Z"));
    }
    var notes = document.querySelectorAll("[data-local-note]");
    for (var j = 0; j < notes.length; j++) notes[j].textContent = "(times in " + zone + ")";
    var form = inputs[0].form;
    if (!form) return;
    form.addEventListener("submit", function () {
      for (var k = 0; k < inputs.length; k++) {
        if (!inputs[k].value) continue;
        var utc = new Date(inputs[k].value).toISOString();  // parsed as local time
        inputs[k].type = "text";  // a UTC value, not a local one, goes to the server
        inputs[k].value = utc.slice(0, 16);
      }
    });
  }

  // Thumbnails of the photos chosen, before they are uploaded.
  function previewPhotos() {
    var input = document.querySelector('input[type="file"][name="photos"]');
    var list = document.getElementById("photo-previews");
    if (!input || !list || !window.URL) return;
    input.addEventListener("change", function () {
      list.textContent = "";
      for (var i = 0; i < input.files.length; i++) {
        var item = document.createElement("li");
        var img = document.createElement("img");
        img.src = URL.createObjectURL(input.files[i]);
        img.alt = input.files[i].name;
        img.className = "photo-preview";
        item.appendChild(img);
        list.appendChild(item);
      }
    });
  }

  // The gallery: a thumbnail shows its photo in place (without the script it opens it).
  function gallery() {
    var main = document.getElementById("gallery-main");
    if (!main) return;
    var links = document.querySelectorAll(".gallery-thumbs a");
    for (var i = 0; i < links.length; i++) {
      links[i].addEventListener("click", function (event) {
        event.preventDefault();
        main.src = this.getAttribute("href");
        main.width = parseInt(this.getAttribute("data-width"), 10);
        main.height = parseInt(this.getAttribute("data-height"), 10);
        for (var j = 0; j < links.length; j++) links[j].removeAttribute("aria-current");
        this.setAttribute("aria-current", "true");
      });
    }
  }

  document.documentElement.classList.add("js");
  var note = document.getElementById("time-zone-note");
  if (note) note.textContent = "Times are shown in your time zone (" + zone + ").";
  localizeTimes();
  localizeInputs();
  previewPhotos();
  gallery();
})();
