declare module 'svg-to-pdfkit';
