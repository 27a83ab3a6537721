// Compose page: autosave the draft every 30 s while it changes, and complete
// addresses from the user's recent correspondents. The page works without it.
(function () {
  "use strict";
  var form = document.getElementById("compose-form");
  if (!form) {
    return;
  }
  var status = document.getElementById("autosave-status");
  var idField = form.querySelector("input[name=message]");
  var dirty = false;
  var saving = false;

  form.addEventListener("input", function () {
    dirty = true;
  });

  function fieldsOnly() {
    var data = new FormData(form);
    data.delete("attachments");
    data.delete("action");
    return data;
  }

  function autosave() {
    if (!dirty || saving) {
      return;
    }
    saving = true;
    dirty = false;
    fetch(form.dataset.autosaveUrl, {
      method: "POST",
      body: fieldsOnly(),
      credentials: "same-origin",
      headers: { "X-Requested-With": "fetch" },
    })
      .then(function (response) {
        return response.json().then(function (body) {
          return { ok: response.ok, body: body };
        });
      })
      .then(function (result) {
        if (result.ok) {
          idField.value = result.body.id;
          form.action = result.body.edit_url;
          if (window.history && window.history.replaceState) {
            window.history.replaceState(null, "", result.body.edit_url);
          }
          status.textContent = result.body.warning || status.dataset.saved || "✓";
        } else {
          dirty = true;
        }
      })
      .catch(function () {
        dirty = true;
      })
      .finally(function () {
        saving = false;
      });
  }

  var seconds = parseInt(form.dataset.autosaveSeconds, 10) || 30;
  window.setInterval(autosave, seconds * 1000);

  // Address completion: suggestions for the address being typed (after the
  // last comma) fill the shared datalist.
  var list = document.getElementById("correspondents");
  var timer = null;
  form.querySelectorAll("input[data-addresses]").forEach(function (input) {
    input.addEventListener("input", function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(function () {
        var parts = input.value.split(",");
        var current = parts.pop().trim();
        if (current.length < 2) {
          return;
        }
        var prefix = parts.length ? parts.join(",") + ", " : "";
        var url = form.dataset.addressesUrl + "?q=" + encodeURIComponent(current);
        fetch(url, { credentials: "same-origin" })
          .then(function (response) {
            return response.json();
          })
          .then(function (body) {
            list.textContent = "";
            body.results.forEach(function (item) {
              var option = document.createElement("option");
              option.value = prefix + item.text;
              list.appendChild(option);
            });
          })
          .catch(function () {});
      }, 200);
    });
  });
})();
