declare module 'pdfkit';
