// statusgate console: live updates over the JSON API's Watch stream (Server-Sent Events).
// Pages work without this script. With it, an element marked data-live opens the
// EventSource in its data-watch and, when an event arrives, fetches the server-rendered
// HTML in its data-refresh: "swap" replaces the page's [data-swap] sections, "prepend"
// inserts the new rows of a feed. Nothing from the stream is ever written into the page
// as HTML: the server renders (and escapes, and masks) everything shown.
(function () {
  "use strict";

  var KEEP_ROWS = 500;

  function announce(text) {
    var region = document.getElementById("announcer");
    if (region) {
      region.textContent = text;
    }
  }

  function plural(count, word) {
    return count + " " + word + (count === 1 ? "" : "s");
  }

  function sequences(root) {
    return Array.prototype.map.call(root.querySelectorAll("[data-sequence]"), function (el) {
      return Number(el.getAttribute("data-sequence"));
    });
  }

  function newest(root) {
    return sequences(root).reduce(function (a, b) { return Math.max(a, b); }, 0);
  }

  function showHead(sequence) {
    document.querySelectorAll("[data-sequence-head]").forEach(function (el) {
      if (Number(el.textContent) < sequence) {
        el.textContent = String(sequence);
      }
    });
  }

  function fetchDocument(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.text();
      })
      .then(function (text) {
        return new DOMParser().parseFromString(text, "text/html");
      });
  }

  function follow(root) {
    var mode = root.getAttribute("data-live");
    var state = root.querySelector("[data-live-state]");
    var pause = root.querySelector("[data-pause]");
    var refreshUrl = new URL(root.getAttribute("data-refresh"), window.location.href);
    var after = Number(refreshUrl.searchParams.get("after") || "0");
    var paused = false;
    var waiting = 0;
    var busy = false;
    var again = false;

    function say(text) {
      if (state) {
        state.hidden = false;
        state.textContent = text;
      }
    }

    // Sequences marked new, and when: a burst of events makes several swaps in a row,
    // and each swap must keep the marks of the one just before it.
    var marked = [];
    var markedAt = 0;

    function swap() {
      var before = newest(root);
      return fetchDocument(refreshUrl.href).then(function (fresh) {
        root.querySelectorAll("[data-swap]").forEach(function (old) {
          var replacement = fresh.getElementById(old.id);
          if (replacement) {
            old.replaceWith(document.adoptNode(replacement));
          }
        });
        var added = sequences(root).filter(function (s) { return s > before; });
        if (Date.now() - markedAt > 5000) {
          marked = [];
        }
        marked = marked.concat(added);
        markedAt = Date.now();
        root.querySelectorAll("[data-sequence]").forEach(function (el) {
          if (marked.indexOf(Number(el.getAttribute("data-sequence"))) >= 0) {
            el.classList.add("new");
          }
        });
        if (added.length) {
          announce(plural(added.length, "new event"));
        }
      });
    }

    function prepend() {
      refreshUrl.searchParams.set("after", String(after));
      return fetchDocument(refreshUrl.href).then(function (fresh) {
        var rows = Array.prototype.slice.call(fresh.querySelectorAll("tr[data-sequence]"));
        if (!rows.length) {
          return;
        }
        var body = root.querySelector("[data-rows]");
        for (var i = rows.length - 1; i >= 0; i -= 1) {
          var row = document.adoptNode(rows[i]);
          row.classList.add("new");
          body.insertBefore(row, body.firstChild);
          after = Math.max(after, Number(row.getAttribute("data-sequence")));
        }
        while (body.rows.length > KEEP_ROWS) {
          body.deleteRow(body.rows.length - 1);
        }
        var empty = root.querySelector("[data-empty]");
        if (empty) {
          empty.remove();
        }
        announce(plural(rows.length, "new event"));
      });
    }

    function refresh() {
      if (busy) {
        again = true;
        return;
      }
      busy = true;
      again = false;
      (mode === "swap" ? swap() : prepend())
        .then(function () {
          say(paused ? "Paused." : "Live: following new events.");
        })
        .catch(function (error) {
          say("Could not update (" + error.message + "): reload the page.");
        })
        .then(function () {
          busy = false;
          if (again && !paused) {
            refresh();
          }
        });
    }

    var stream = new EventSource(root.getAttribute("data-watch"));
    stream.addEventListener("status", function (message) {
      showHead(Number(message.lastEventId));
      if (paused) {
        waiting += 1;
        pause.textContent = "Resume (" + plural(waiting, "new event") + ")";
        return;
      }
      refresh();
    });
    stream.addEventListener("caught_up", function () {
      say(paused ? "Paused." : "Live: following new events.");
    });
    stream.addEventListener("error", function () {
      if (stream.readyState === EventSource.CLOSED) {
        // Refused (signed out, or the client's limit of open streams): no retry.
        say("Live updates stopped: the gateway refused the stream. Reload to try again.");
      } else {
        // The browser reconnects by itself, resuming after the last event it saw.
        say("Reconnecting to the live stream…");
      }
    });

    if (pause) {
      pause.hidden = false;
      pause.addEventListener("click", function () {
        paused = !paused;
        pause.setAttribute("aria-pressed", String(paused));
        pause.textContent = paused ? "Resume" : "Pause";
        say(paused ? "Paused: new events are counted, not shown." : "Live: following new events.");
        if (!paused && waiting) {
          waiting = 0;
          refresh();
        }
      });
    }
  }

  document.querySelectorAll("[data-live]").forEach(follow);
}());
