// The module the crash happens in. Each kind of function Metro names differently sits on
// the crash path: a class method (Cart#total), a plain function (priceWith), an anonymous
// callback passed to it, and an arrow function held in a const (applyDiscount), which
// builds and throws the TypeError. Everything is exported so that the minifier keeps the
// functions apart instead of inlining the ones used once.
'use strict';

const applyDiscount = (total, code) => {
  if (code !== 'SAVE10') {
    throw new TypeError('unknown discount code: ' + code);
  }
  return total * 0.9;
};

function priceWith(code, compute) {
  return compute(code);
}

class Cart {
  constructor(items) {
    this.items = items;
  }

  total(code) {
    const subtotal = this.items.reduce((sum, item) => sum + item.price * item.qty, 0);
    return priceWith(code, function (discountCode) {
      return applyDiscount(subtotal, discountCode);
    });
  }
}

module.exports = {Cart, applyDiscount, priceWith};
