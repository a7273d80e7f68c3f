// The desk without page reloads: customer lookup, product lines, a running total.
// Everything here is an enhancement; the forms work the same without it.
(function () {
  "use strict";

  function cents(value) {
    var number = parseFloat(String(value || "").replace(",", "."));
    return isFinite(number) ? Math.round(number * 100) : 0;
  }

  function money(amountInCents) {
    var sign = amountInCents < 0 ? "-" : "";
    var abs = Math.abs(amountInCents);
    return sign + Math.floor(abs / 100) + "." + String(abs % 100).padStart(2, "0");
  }

  function getJSON(url) {
    return fetch(url, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    }).then(function (response) {
      if (!response.ok) throw new Error("HTTP " + response.status);
      return response.json();
    });
  }

  function element(tag, text, className) {
    var node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    if (className) node.className = className;
    return node;
  }

  function saleForm(form) {
    var lookupUrl = form.dataset.lookupUrl;
    var searchUrl = form.dataset.searchUrl;
    var currency = form.dataset.currency || "";
    var identifier = form.querySelector("#id_identifier");
    var panel = form.querySelector("#customer-panel");
    var newCustomer = form.querySelector("#new-customer");
    var rowsBody = form.querySelector("#line-rows");
    var template = form.querySelector("#line-template");
    var totalForms = form.querySelector("#id_lines-TOTAL_FORMS");
    var totalOutput = form.querySelector("#sale-total");
    var pointsHelp = form.querySelector("[data-points-help]");
    var pointsInput = form.querySelector("#id_points_to_redeem");
    var recordButton = form.querySelector("[data-record]");
    var datalist = form.querySelector("#desk-products");
    var pointValue = cents(form.dataset.pointValue);
    var lastLookup = identifier.value.trim();
    var anonymousPanel = panel.dataset.anonymous;
    var anonymousPointsHelp = panel.dataset.anonymousPoints;
    var submitting = false;

    // Lines -------------------------------------------------------------------

    function rows() {
      return Array.prototype.slice.call(rowsBody.querySelectorAll("[data-line]"));
    }

    function recalculate() {
      var total = 0;
      rows().forEach(function (row) {
        var price = row.querySelector("[data-line-price]").dataset.linePrice;
        var cell = row.querySelector("[data-line-total]");
        if (!price) {
          cell.textContent = "";
          return;
        }
        var quantity = parseInt(row.querySelector("[data-line-quantity]").value, 10);
        if (!(quantity > 0)) quantity = 0;
        var discount = cents(row.querySelector("[data-line-discount]").value);
        var amount = cents(price) * quantity - discount;
        cell.textContent = money(amount);
        total += amount;
      });
      totalOutput.textContent = currency + " " + money(total);
      if (pointsInput && pointValue) {
        var points = parseInt(pointsInput.value, 10) || 0;
        pointsInput.setAttribute("aria-valuetext", points + " = " + currency + " " + money(points * pointValue));
      }
    }

    function showProduct(row, product) {
      var name = row.querySelector("[data-line-name]");
      var price = row.querySelector("[data-line-price]");
      if (product) {
        name.textContent = product.name;
        price.dataset.linePrice = product.price;
        price.textContent = "at " + product.price;
      } else {
        name.textContent = "";
        price.dataset.linePrice = "";
        price.textContent = "";
      }
      recalculate();
    }

    function resolve(row) {
      var input = row.querySelector("[data-line-code]");
      var code = input.value.trim();
      if (!code) {
        showProduct(row, null);
        return Promise.resolve(null);
      }
      if (input.dataset.resolved === code) return Promise.resolve(true);
      return getJSON(searchUrl + "?q=" + encodeURIComponent(code)).then(function (data) {
        var match = (data.results || []).find(function (product) {
          return product.sku === code || product.barcode === code ||
            product.sku === code.toUpperCase();
        });
        input.dataset.resolved = match ? code : "";
        showProduct(row, match || null);
        if (!match) {
          row.querySelector("[data-line-name]").appendChild(
            element("span", "No product with this code", "error")
          );
        }
        return match;
      }).catch(function () { return null; });
    }

    function addRow() {
      var index = parseInt(totalForms.value, 10);
      var html = template.innerHTML
        .replace(/__prefix__/g, String(index))
        .replace(/__number__/g, String(rows().length + 1));
      var holder = document.createElement("tbody");
      holder.innerHTML = html.trim();
      var row = holder.firstElementChild;
      rowsBody.appendChild(row);
      totalForms.value = String(index + 1);
      wireRow(row);
      return row;
    }

    function nextRow(row) {
      var all = rows();
      var position = all.indexOf(row);
      return all[position + 1] || addRow();
    }

    var searchTimer = null;
    function suggest(code) {
      clearTimeout(searchTimer);
      if (code.length < 2 || /^\d+$/.test(code)) return;
      searchTimer = setTimeout(function () {
        getJSON(searchUrl + "?q=" + encodeURIComponent(code)).then(function (data) {
          datalist.innerHTML = "";
          (data.results || []).forEach(function (product) {
            var option = element("option");
            option.value = product.sku;
            option.label = product.name + " · " + product.price;
            datalist.appendChild(option);
          });
        }).catch(function () {});
      }, 200);
    }

    function wireRow(row) {
      var code = row.querySelector("[data-line-code]");
      var remove = row.querySelector("[data-line-remove]");
      remove.hidden = false;
      code.addEventListener("keydown", function (event) {
        if (event.key !== "Enter" || event.ctrlKey || event.metaKey) return;
        event.preventDefault();
        resolve(row).then(function (found) {
          if (found) nextRow(row).querySelector("[data-line-code]").focus();
        });
      });
      code.addEventListener("change", function () { resolve(row); });
      code.addEventListener("input", function () { suggest(code.value.trim()); });
      ["[data-line-quantity]", "[data-line-discount]"].forEach(function (selector) {
        var input = row.querySelector(selector);
        input.addEventListener("input", recalculate);
        input.addEventListener("keydown", function (event) {
          if (event.key !== "Enter" || event.ctrlKey || event.metaKey) return;
          event.preventDefault();
          nextRow(row).querySelector("[data-line-code]").focus();
        });
      });
      remove.addEventListener("click", function () {
        var next = nextRow(row);
        // The formset skips missing indexes, so the row can simply go.
        row.remove();
        if (!rows().length) next = addRow();
        next.querySelector("[data-line-code]").focus();
        recalculate();
      });
    }

    // Customer ------------------------------------------------------------------

    // The panel's HTML is rendered by the server from the same template as the page
    // (desk/_customer.html), so its labels, dates and numbers are localised once.
    function showCustomer(data) {
      panel.innerHTML = data ? data.html : anonymousPanel;
      pointsHelp.innerHTML = data ? data.points_help : anonymousPointsHelp;
      if (pointsInput) pointsInput.max = data && data.card ? data.card.points : "";
      if (!data || !data.found) {
        if (data) {
          var email = form.querySelector("#id_new_email");
          var phone = form.querySelector("#id_new_phone");
          if (data.unknown_email && !email.value) email.value = data.unknown_email;
          if (data.unknown_phone && !phone.value) phone.value = data.unknown_phone;
          newCustomer.hidden = false;
        }
        return;
      }
      // Someone who is found needs no registering, unless the card is nobody's.
      newCustomer.hidden = Boolean(data.customer) && !newCustomerTyped();
    }

    function newCustomerTyped() {
      return ["#id_new_first_name", "#id_new_email", "#id_new_phone"].some(function (selector) {
        return form.querySelector(selector).value.trim() !== "";
      });
    }

    function lookup() {
      var query = identifier.value.trim();
      lastLookup = query;
      if (!query) {
        showCustomer(null);
        newCustomer.hidden = false;
        return Promise.resolve(null);
      }
      panel.setAttribute("aria-busy", "true");
      return getJSON(lookupUrl + "?q=" + encodeURIComponent(query)).then(function (data) {
        if (identifier.value.trim() === query) showCustomer(data);
        return data;
      }).catch(function () {
        return null;
      }).finally(function () {
        panel.removeAttribute("aria-busy");
      });
    }

    identifier.addEventListener("keydown", function (event) {
      if (event.key !== "Enter" || event.ctrlKey || event.metaKey) return;
      event.preventDefault();
      lookup().then(function (data) {
        if (data && data.found) {
          rows()[0].querySelector("[data-line-code]").focus();
        } else if (data) {
          form.querySelector("#id_new_first_name").focus();
        }
      });
    });
    form.querySelector("[data-find]").addEventListener("click", function (event) {
      event.preventDefault();
      lookup();
    });
    identifier.addEventListener("change", function () {
      if (identifier.value.trim() !== lastLookup) lookup();
    });

    // The form ------------------------------------------------------------------

    form.addEventListener("keydown", function (event) {
      if (event.key !== "Enter") return;
      if (event.ctrlKey || event.metaKey) {
        event.preventDefault();
        form.requestSubmit(recordButton);
        return;
      }
      var target = event.target;
      // Enter moves on instead of reloading the page, except on buttons.
      if (target.tagName === "INPUT" && !event.defaultPrevented) {
        event.preventDefault();
        var fields = Array.prototype.slice.call(
          form.querySelectorAll("input:not([type=hidden]), button[data-record]")
        ).filter(function (node) { return !node.closest("[hidden]"); });
        var next = fields[fields.indexOf(target) + 1];
        if (next) next.focus();
      }
    });

    form.addEventListener("submit", function (event) {
      var submitter = event.submitter;
      var recording = !submitter || submitter.value === "record";
      if (!recording) return;
      // One sale per form: a second click waits for the first (the server would
      // answer it with the same receipt anyway).
      if (submitting) {
        event.preventDefault();
        return;
      }
      submitting = true;
      recordButton.setAttribute("aria-busy", "true");
    });
    window.addEventListener("pageshow", function () {
      submitting = false;
      recordButton.removeAttribute("aria-busy");
    });

    if (pointsInput) pointsInput.addEventListener("input", recalculate);
    form.querySelectorAll("[data-add-line]").forEach(function (button) {
      button.hidden = true;
    });
    rows().forEach(wireRow);
    if (!rows().length) addRow();
    if (panel.querySelector("[data-customer-registered]") && !newCustomerTyped()) {
      newCustomer.hidden = true;
    }
    recalculate();
    // After a refused sale, start where the first problem is.
    var invalid = form.querySelector("[aria-invalid=true]");
    if (invalid) invalid.focus();
  }

  function emailState(node) {
    if (node.dataset.emailStatus !== "pending") return;
    var tries = 0;
    var timer = setInterval(function () {
      tries += 1;
      getJSON(node.dataset.statusUrl).then(function (data) {
        if (data.status !== "pending") {
          clearInterval(timer);
          window.location.reload();
        }
      }).catch(function () {});
      if (tries >= 30) clearInterval(timer);
    }, 2000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("sale-form");
    if (form) saleForm(form);
    var state = document.getElementById("email-state");
    if (state) emailState(state);
    document.querySelectorAll("[data-print]").forEach(function (button) {
      button.addEventListener("click", function () { window.print(); });
    });
    if (document.body.hasAttribute("data-autoprint")) window.print();
  });
})();
