// django-celery-beat periodic task form: show the crontab in words (was an inline script; CSP).
(function () {
  "use strict";
  var script = document.getElementById("periodic-task-overrides");
  var data = document.getElementById("readable-crontabs");
  if (!script || !data || !window.django || !window.django.jQuery) return;
  var $ = window.django.jQuery;
  var readableCrontabs = JSON.parse(data.textContent);
  var originalHelp = script.getAttribute("data-crontab-help") || "";
  function update(additional) {
    var help = $(".field-crontab .help");
    help.text(originalHelp);
    if (additional) { help.append($("<br>"), document.createTextNode("Translation: " + additional)); }
  }
  $(".field-crontab_translation").hide();
  $(".field-crontab").change(function () { update(readableCrontabs[$("#id_crontab").val()]); });
})();
